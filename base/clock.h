/* The clock every room times things with: monotonic microseconds. Monotonic because the
 * figures are durations and deadlines (a timeout, a wall time in the stats), which must not
 * jump when the system clock is set. */
#ifndef CACHEPOT_BASE_CLOCK_H
#define CACHEPOT_BASE_CLOCK_H

#include <stdint.h>

/* Microseconds of CLOCK_MONOTONIC: only differences between two calls mean anything. Cannot
 * fail (CLOCK_MONOTONIC always exists on Linux). */
uint64_t monotonic_us(void);

#endif
