#ifndef CUBES_H
#define CUBES_H
#define CUBES_BONUS 0
unsigned sum_of_cubes(unsigned n);
#endif
