#include <numeric>
#include <vector>

#include "squares.h"

extern "C" unsigned triangle_default()
{
	std::vector<unsigned> v(SQUARES_UP_TO);
	std::iota(v.begin(), v.end(), 1u);
	return std::accumulate(v.begin(), v.end(), 0u);
}
