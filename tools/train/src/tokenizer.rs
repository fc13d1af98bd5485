//! CLIP's byte-pair tokenizer, as OpenAI's `simple_tokenizer.py` and the SAFE authors use it:
//! clean the text (HTML unescape twice, collapse whitespace, lowercase), split with CLIP's regex,
//! map bytes to unicode, BPE each word with `</w>` on its last symbol, then
//! [<|startoftext|>] + tokens + [<|endoftext|>], zero-padded to the context length.
//! ftfy's mojibake repair is not applied: class names are plain text.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{bail, Context, Result};
use regex::Regex;

/// The merge list shipped with CLIP (MIT licence, (c) 2021 OpenAI).
static VOCAB_GZ: &[u8] = include_bytes!("../assets/bpe_simple_vocab_16e6.txt.gz");
const MERGES: usize = 49152 - 256 - 2;
pub const SOT: i64 = 49406;
pub const EOT: i64 = 49407;

pub struct Tokenizer {
    encoder: HashMap<String, i64>,
    ranks: HashMap<(String, String), usize>,
    byte_chars: [char; 256],
    pattern: Regex,
}

/// GPT-2's reversible byte -> printable character map, as (byte, char) pairs in the order
/// CLIP's vocabulary lists the byte tokens: printable bytes first, then the rest.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut pairs: Vec<(u8, char)> = printable.iter().map(|&b| (b as u8, char::from_u32(b).unwrap_or('\0'))).collect();
    let others = (0..256u32).filter(|b| !printable.contains(b));
    pairs.extend(others.zip(256u32..).map(|(b, c)| (b as u8, char::from_u32(c).unwrap_or('\0'))));
    pairs
}

impl Tokenizer {
    pub fn new() -> Result<Self> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(VOCAB_GZ)
            .read_to_string(&mut text)
            .context("reading the bundled BPE vocabulary")?;
        let merges: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .take(MERGES)
            .map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect::<Option<_>>()
            .context("malformed merge line in the BPE vocabulary")?;
        let byte_map = bytes_to_unicode();
        let mut byte_chars = ['\0'; 256];
        for &(b, c) in &byte_map {
            byte_chars[b as usize] = c;
        }
        // Vocabulary order: the byte tokens, the same with </w>, the merges, the specials.
        let mut vocab: Vec<String> = byte_map.iter().map(|(_, c)| c.to_string()).collect();
        let with_end: Vec<String> = vocab.iter().map(|v| format!("{v}</w>")).collect();
        vocab.extend(with_end);
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push("<|startoftext|>".into());
        vocab.push("<|endoftext|>".into());
        let encoder = vocab.into_iter().enumerate().map(|(i, v)| (v, i as i64)).collect();
        let ranks = merges.into_iter().enumerate().map(|(i, m)| (m, i)).collect();
        let pattern = Regex::new(
            r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )?;
        Ok(Tokenizer { encoder, ranks, byte_chars, pattern })
    }

    fn bpe(&self, word: &str) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let mut parts: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        if let Some(last) = parts.last_mut() {
            last.push_str("</w>");
        }
        loop {
            let best = parts
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0].clone(), w[1].clone())).map(|r| (*r, w[0].clone(), w[1].clone())))
                .min();
            let Some((_, a, b)) = best else { break };
            let mut merged = Vec::with_capacity(parts.len());
            let mut i = 0;
            while i < parts.len() {
                if i + 1 < parts.len() && parts[i] == a && parts[i + 1] == b {
                    merged.push(format!("{a}{b}"));
                    i += 2;
                } else {
                    merged.push(parts[i].clone());
                    i += 1;
                }
            }
            parts = merged;
        }
        parts
    }

    /// Token ids of `text`, without the start/end tokens.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let once = html_escape::decode_html_entities(text);
        let twice = html_escape::decode_html_entities(&once);
        let clean = twice.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&clean) {
            let word: String = m.as_str().bytes().map(|b| self.byte_chars[b as usize]).collect();
            ids.extend(self.bpe(&word).iter().filter_map(|p| self.encoder.get(p).copied()));
        }
        ids
    }

    /// [SOT] + ids + [EOT], zero-padded to `context`; an error if it does not fit.
    pub fn tokenize(&self, text: &str, context: usize) -> Result<Vec<i64>> {
        let mut out = vec![SOT];
        out.extend(self.encode(text));
        out.push(EOT);
        if out.len() > context {
            bail!("{text:?} is {} tokens, more than the context length {context}", out.len());
        }
        out.resize(context, 0);
        Ok(out)
    }
}

/// The token rows of the labels and the flat index of each row's end token.
pub fn tokens(labels: &[String], context: i64) -> Result<(Vec<i64>, Vec<i64>)> {
    let tok = Tokenizer::new()?;
    let (mut rows, mut eot) = (Vec::new(), Vec::new());
    for (c, label) in labels.iter().enumerate() {
        let row = tok.tokenize(label, context as usize)?;
        let end = row.iter().enumerate().max_by_key(|(_, &v)| v).map(|(i, _)| i).unwrap_or(0);
        eot.push(c as i64 * context + end as i64);
        rows.extend(row);
    }
    Ok((rows, eot))
}
