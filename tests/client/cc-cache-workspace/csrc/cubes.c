#include "cubes.h"

unsigned sum_of_cubes(unsigned n)
{
	unsigned sum = CUBES_BONUS;
	for (unsigned i = 1; i <= n; i++)
		sum += i * i * i;
	return sum;
}
