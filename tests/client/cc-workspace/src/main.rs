extern "C" {
    fn sum_of_squares_default() -> u32;
    #[cfg(with_cxx)]
    fn triangle_default() -> u32;
}

fn main() {
    let squares = unsafe { sum_of_squares_default() };
    #[cfg(with_cxx)]
    println!("squares {} triangle {}", squares, unsafe { triangle_default() });
    #[cfg(not(with_cxx))]
    println!("squares {}", squares);
}
