extern "C" {
    fn sum_of_squares(n: u32) -> u32;
    fn sum_of_cubes(n: u32) -> u32;
    fn mixed(n: u32) -> u32;
    fn triangle(n: u32) -> u32;
}

fn main() {
    unsafe {
        println!(
            "squares {} cubes {} mixed {} triangle {}",
            sum_of_squares(10),
            sum_of_cubes(10),
            mixed(10),
            triangle(10)
        );
    }
}
