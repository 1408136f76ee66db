//! Synthetic text of a given length, for tool results and replayed traces: words of three
//! letters, each with its leading space, so a text of n words is n tokens at the
//! simulator's four characters a token, and about n for a real tokenizer too. The same
//! seed gives the same words, and a shorter text is a prefix of a longer one, so prompts
//! that share a seed share a prefix (and a server's prefix cache sees it).

use crate::rng::{Rng, mix64};

const WORDS: [&str; 64] = [
    " the", " and", " for", " are", " but", " not", " you", " all", " any", " can", " had", " her",
    " was", " one", " our", " out", " day", " get", " has", " him", " his", " how", " man", " new",
    " now", " old", " see", " two", " way", " who", " did", " its", " let", " put", " say", " she",
    " too", " use", " run", " set", " key", " map", " log", " row", " sum", " max", " min", " top",
    " end", " bit", " job", " fix", " add", " cut", " big", " low", " raw", " ask", " why", " yes",
    " net", " box", " red", " sky",
];

/// `tokens` words drawn from `seed`.
pub fn words(seed: u64, tokens: u32) -> String {
    let mut rng = Rng::new(mix64(seed ^ 0x7379_6e74));
    let mut out = String::with_capacity(tokens as usize * 4);
    for _ in 0..tokens {
        out.push_str(WORDS[rng.below(WORDS.len())]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_four_characters_and_prefixes_agree() {
        let long = words(3, 100);
        assert_eq!(long.chars().count(), 400);
        assert!(long.starts_with(&words(3, 40)));
        assert_ne!(long, words(4, 100));
        assert!(words(3, 0).is_empty());
    }
}
