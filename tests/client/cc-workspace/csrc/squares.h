#ifndef SQUARES_H
#define SQUARES_H
#define SQUARES_UP_TO 10
unsigned sum_of_squares(unsigned n);
#endif
