//! Friendly names for containers started without `--name`.

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nimble",
    "proud", "quiet", "rapid", "sharp", "tidy", "witty",
];
const NOUNS: [&str; 16] = [
    "arch", "beam", "cable", "deck", "girder", "hinge", "joist", "keystone", "lintel", "pier",
    "rail", "span", "strut", "truss", "vault", "weld",
];

/// `adjective_noun`, with a number appended if `taken` already has it.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut bytes = [0u8; 2];
    crate::random_bytes(&mut bytes);
    let base = format!(
        "{}_{}",
        ADJECTIVES[bytes[0] as usize % 16],
        NOUNS[bytes[1] as usize % 16]
    );
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !taken(n))
        .expect("an unbounded search ends")
}
