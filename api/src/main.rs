fn main() {
    println!("datapress-api: placeholder, being built");
}
