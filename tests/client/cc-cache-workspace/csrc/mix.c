#include "cubes.h"
#include "generated.h"
#include "squares.h"

unsigned mixed(unsigned n)
{
	return SCALE * sum_of_squares(n) + sum_of_cubes(n) + GENERATED_OFFSET - CUBES_BONUS;
}
