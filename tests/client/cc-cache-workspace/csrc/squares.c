#include "squares.h"

unsigned sum_of_squares(unsigned n)
{
	unsigned sum = 0;
	for (unsigned i = 1; i <= n; i++)
		sum += i * i;
	return sum;
}
