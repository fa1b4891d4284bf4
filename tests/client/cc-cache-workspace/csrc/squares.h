#ifndef SQUARES_H
#define SQUARES_H
unsigned sum_of_squares(unsigned n);
#endif
