//! Site identifiers: generation and shape validation.
//!
//! This module owns the public identifier every site is known by, of the form
//! `<adjective>-<noun>-<SUFFIX>`, e.g. `mossy-acorn-8K2PN9`:
//!
//! * `<adjective>` is one of [`ADJECTIVES`] and `<noun>` one of [`NOUNS`]: our own woodland
//!   word lists, lowercase ASCII letters only (so they never contain the `-` separator);
//! * `<SUFFIX>` is exactly 6 characters from `A-Z0-9` (uppercase only).
//!
//! Invariant: every string returned by [`generate`] satisfies [`is_well_formed`] and is at
//! most [`MAX_LEN`] bytes long. The module does *not* guarantee uniqueness; that is the job
//! of the database's UNIQUE constraint, and callers retry [`generate`] on conflict.
//!
//! Space: ~200 adjectives x ~200 nouns x 36^6 suffixes is about 9e13 identifiers (~46 bits),
//! so collisions are rare (about 5e-7 chance of any collision among 10,000 ids) and
//! identifiers cannot practically be enumerated or guessed from one another.
//!
//! The module is self-contained: it depends only on `std` and `rand` 0.9.

use rand::Rng;
use rand::seq::IndexedRandom;

/// Number of characters in the random suffix.
const SUFFIX_LEN: usize = 6;

/// The suffix alphabet: `A-Z` then `0-9` (36 symbols).
const SUFFIX_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Adjectives for the first part of an identifier (lowercase ASCII letters, unique).
pub const ADJECTIVES: &[&str] = &[
    // Nature and landscape (68)
    "mossy",
    "ancient",
    "verdant",
    "leafy",
    "grassy",
    "ferny",
    "woody",
    "sylvan",
    "wild",
    "tangled",
    "overgrown",
    "lush",
    "dewy",
    "misty",
    "foggy",
    "hazy",
    "sunlit",
    "moonlit",
    "starlit",
    "dappled",
    "shadowed",
    "gnarled",
    "knotted",
    "sprouting",
    "blooming",
    "budding",
    "flowering",
    "hollow",
    "towering",
    "hidden",
    "quiet",
    "peaceful",
    "tranquil",
    "gentle",
    "mellow",
    "serene",
    "silent",
    "hushed",
    "whispering",
    "rustling",
    "murmuring",
    "babbling",
    "trickling",
    "singing",
    "humming",
    "drowsy",
    "sleepy",
    "dreaming",
    "wandering",
    "meandering",
    "winding",
    "craggy",
    "rocky",
    "sandy",
    "marshy",
    "reedy",
    "brambly",
    "thorny",
    "prickly",
    "tufted",
    "feathered",
    "downy",
    "velvety",
    "silken",
    "soft",
    "smooth",
    "rugged",
    "weathered",
    // Colours and light (57)
    "amber",
    "golden",
    "silver",
    "copper",
    "bronze",
    "russet",
    "auburn",
    "ochre",
    "umber",
    "sienna",
    "crimson",
    "scarlet",
    "ruby",
    "rosy",
    "coral",
    "saffron",
    "honeyed",
    "lemon",
    "olive",
    "jade",
    "emerald",
    "teal",
    "azure",
    "cobalt",
    "indigo",
    "violet",
    "lilac",
    "lavender",
    "plum",
    "mauve",
    "ivory",
    "pearly",
    "snowy",
    "slate",
    "smoky",
    "dusky",
    "tawny",
    "bright",
    "glowing",
    "gleaming",
    "glimmering",
    "shimmering",
    "twinkling",
    "sparkling",
    "luminous",
    "radiant",
    "shining",
    "twilight",
    "dawning",
    "gloaming",
    "sunny",
    "shadowy",
    "fiery",
    "burnished",
    "gilded",
    "frosted",
    "iridescent",
    // Texture, size and temperament (29)
    "woolly",
    "fuzzy",
    "crisp",
    "sturdy",
    "stout",
    "slender",
    "nimble",
    "tiny",
    "grand",
    "mighty",
    "lofty",
    "bushy",
    "sprightly",
    "spry",
    "merry",
    "jolly",
    "cheerful",
    "bold",
    "brave",
    "clever",
    "curious",
    "wise",
    "kindly",
    "friendly",
    "playful",
    "lively",
    "swift",
    "noble",
    "steadfast",
    // Seasons and weather (26)
    "vernal",
    "autumnal",
    "wintry",
    "summery",
    "midsummer",
    "midwinter",
    "harvest",
    "frosty",
    "snowbound",
    "icy",
    "rainy",
    "drizzly",
    "stormy",
    "windswept",
    "breezy",
    "blustery",
    "balmy",
    "mild",
    "warm",
    "cool",
    "chilly",
    "brisk",
    "cloudy",
    "sunkissed",
    "rainswept",
    "nocturnal",
    // Mystical and timeless (30)
    "enchanted",
    "mystic",
    "magical",
    "fabled",
    "storied",
    "legendary",
    "charmed",
    "spellbound",
    "elfin",
    "hallowed",
    "secret",
    "arcane",
    "wondrous",
    "dreamy",
    "ethereal",
    "timeless",
    "starry",
    "celestial",
    "lunar",
    "twilit",
    "runic",
    "gossamer",
    "whimsical",
    "eternal",
    "primeval",
    "primordial",
    "elder",
    "venerable",
    "ageless",
    "evergreen",
];

/// Nouns for the second part of an identifier (lowercase ASCII letters, unique).
pub const NOUNS: &[&str] = &[
    // Trees (28)
    "oak",
    "ash",
    "elm",
    "birch",
    "beech",
    "alder",
    "aspen",
    "willow",
    "rowan",
    "hazel",
    "holly",
    "yew",
    "pine",
    "spruce",
    "fir",
    "larch",
    "cedar",
    "juniper",
    "maple",
    "linden",
    "hornbeam",
    "poplar",
    "chestnut",
    "walnut",
    "hawthorn",
    "blackthorn",
    "dogwood",
    "laurel",
    // Forest features (28)
    "glade",
    "grove",
    "thicket",
    "copse",
    "dell",
    "clearing",
    "canopy",
    "bramble",
    "briar",
    "hedgerow",
    "meadow",
    "knoll",
    "ridge",
    "vale",
    "glen",
    "wildwood",
    "burrow",
    "nest",
    "stump",
    "branch",
    "twig",
    "bough",
    "bark",
    "heath",
    "moor",
    "grotto",
    "boulder",
    "crag",
    // Water (18)
    "brook",
    "creek",
    "stream",
    "river",
    "pond",
    "tarn",
    "mere",
    "rill",
    "rivulet",
    "waterfall",
    "cascade",
    "rapids",
    "eddy",
    "marsh",
    "fen",
    "dewdrop",
    "ripple",
    "wellspring",
    // Plants and fungi (30)
    "fern",
    "bracken",
    "moss",
    "lichen",
    "ivy",
    "clover",
    "thistle",
    "nettle",
    "heather",
    "foxglove",
    "bluebell",
    "primrose",
    "snowdrop",
    "daisy",
    "buttercup",
    "dandelion",
    "honeysuckle",
    "mushroom",
    "toadstool",
    "truffle",
    "morel",
    "chanterelle",
    "puffball",
    "sapling",
    "acorn",
    "pinecone",
    "catkin",
    "cattail",
    "blackberry",
    "rosehip",
    // Animals (30)
    "squirrel",
    "hedgehog",
    "badger",
    "fox",
    "rabbit",
    "hare",
    "deer",
    "fawn",
    "stag",
    "doe",
    "caribou",
    "bear",
    "wolf",
    "lynx",
    "bobcat",
    "marten",
    "stoat",
    "ermine",
    "otter",
    "vole",
    "mole",
    "mouse",
    "dormouse",
    "chipmunk",
    "bat",
    "toad",
    "frog",
    "newt",
    "salamander",
    "snail",
    // Birds (35)
    "owl",
    "robin",
    "wren",
    "sparrow",
    "finch",
    "thrush",
    "blackbird",
    "starling",
    "jay",
    "magpie",
    "raven",
    "crow",
    "rook",
    "jackdaw",
    "woodpecker",
    "nuthatch",
    "treecreeper",
    "warbler",
    "chickadee",
    "goldcrest",
    "kingfisher",
    "heron",
    "falcon",
    "hawk",
    "kestrel",
    "osprey",
    "kite",
    "cuckoo",
    "nightingale",
    "lark",
    "skylark",
    "swallow",
    "bluebird",
    "waxwing",
    "linnet",
    // Insects (17)
    "firefly",
    "butterfly",
    "moth",
    "beetle",
    "ladybird",
    "bumblebee",
    "honeybee",
    "dragonfly",
    "damselfly",
    "cricket",
    "grasshopper",
    "cicada",
    "caterpillar",
    "ant",
    "mayfly",
    "glowworm",
    "mantis",
    // Natural objects (20)
    "feather",
    "pebble",
    "stone",
    "leaf",
    "petal",
    "seed",
    "berry",
    "antler",
    "shell",
    "driftwood",
    "flint",
    "snowflake",
    "icicle",
    "thistledown",
    "honeycomb",
    "conker",
    "sprig",
    "frond",
    "tendril",
    "blossom",
];

/// Length in bytes of the longest word in `words` (usable in const context).
const fn longest(words: &[&str]) -> usize {
    let mut max = 0;
    let mut i = 0;
    while i < words.len() {
        if words[i].len() > max {
            max = words[i].len();
        }
        i += 1;
    }
    max
}

/// Longest possible identifier in bytes (= chars, all ASCII): longest adjective, `-`,
/// longest noun, `-`, suffix. Computed from the lists at compile time (currently 29).
pub const MAX_LEN: usize = longest(ADJECTIVES) + 1 + longest(NOUNS) + 1 + SUFFIX_LEN;

// Identifiers must fit comfortably in URLs, tracking snippets and database columns.
const _: () = assert!(MAX_LEN <= 50, "identifier MAX_LEN must stay <= 50");

/// A fresh random identifier. Uniqueness is enforced by the database's UNIQUE constraint;
/// callers retry on conflict.
pub fn generate() -> String {
    // RNG choice: `rand::rng()` (ThreadRng). In rand 0.9 it is a CSPRNG (ChaCha12) seeded
    // from the operating system's entropy source (`OsRng`) and periodically reseeded from
    // it, so its output is unpredictable; unlike `OsRng` it is infallible (no error to
    // handle) and does not make a syscall per draw. `choose` draws indices with
    // `random_range`, which is uniform (no modulo bias).
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).expect("ADJECTIVES is non-empty");
    let noun = NOUNS.choose(&mut rng).expect("NOUNS is non-empty");

    let mut id = String::with_capacity(MAX_LEN);
    id.push_str(adjective);
    id.push('-');
    id.push_str(noun);
    id.push('-');
    for _ in 0..SUFFIX_LEN {
        let i = rng.random_range(0..SUFFIX_ALPHABET.len());
        id.push(char::from(SUFFIX_ALPHABET[i]));
    }
    id
}

/// True when `s` has the identifier shape (adjective from the list, noun from the list,
/// 6 of A-Z0-9). Matching is exact: no surrounding whitespace, lowercase words, uppercase
/// suffix.
pub fn is_well_formed(s: &str) -> bool {
    if s.len() > MAX_LEN {
        return false;
    }
    let mut parts = s.split('-');
    let (Some(adjective), Some(noun), Some(suffix), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    suffix.len() == SUFFIX_LEN
        && suffix.bytes().all(|b| SUFFIX_ALPHABET.contains(&b))
        && ADJECTIVES.contains(&adjective)
        && NOUNS.contains(&noun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn check_list(name: &str, words: &[&str]) {
        assert!((190..=260).contains(&words.len()), "{name} has {} words, expected 190..=260", words.len());
        let mut seen = HashSet::new();
        for w in words {
            assert!(!w.is_empty(), "{name} has an empty word");
            assert!(w.len() <= 12, "{name}: {w:?} is longer than 12 chars");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{name}: {w:?} is not lowercase ASCII letters only");
            assert!(seen.insert(*w), "{name}: duplicate word {w:?}");
        }
    }

    fn suffix_of(id: &str) -> &str {
        id.rsplit('-').next().unwrap()
    }

    #[test]
    fn list_sizes_and_word_shape() {
        check_list("ADJECTIVES", ADJECTIVES);
        check_list("NOUNS", NOUNS);
    }

    #[test]
    fn suffix_alphabet_is_a_to_z_and_digits() {
        let expected: Vec<u8> = (b'A'..=b'Z').chain(b'0'..=b'9').collect();
        assert_eq!(SUFFIX_ALPHABET.as_slice(), expected.as_slice());
    }

    #[test]
    fn generated_ids_are_well_formed() {
        for _ in 0..1_000 {
            let id = generate();
            assert!(is_well_formed(&id), "generated {id:?} is not well-formed");
            assert!(id.len() <= MAX_LEN, "{id:?} is longer than MAX_LEN");
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.len(), 3, "{id:?}");
            assert!(ADJECTIVES.contains(&parts[0]), "{id:?}");
            assert!(NOUNS.contains(&parts[1]), "{id:?}");
        }
    }

    #[test]
    fn ten_thousand_ids_have_no_duplicates() {
        // With ~9.4e13 possible ids, P(any collision among 10,000) is about 5e-7.
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = generate();
            assert!(seen.insert(id.clone()), "duplicate id {id:?}");
        }
    }

    #[test]
    fn suffix_respects_alphabet_and_covers_it() {
        let mut used = HashSet::new();
        for _ in 0..10_000 {
            let id = generate();
            let suffix = suffix_of(&id);
            assert_eq!(suffix.len(), SUFFIX_LEN, "{id:?}");
            for b in suffix.bytes() {
                assert!(b.is_ascii_uppercase() || b.is_ascii_digit(), "{id:?} has suffix byte {b:?} outside A-Z0-9");
                used.insert(b);
            }
        }
        // 60,000 uniform draws over 36 symbols: every symbol (letters and digits) appears.
        assert_eq!(used.len(), SUFFIX_ALPHABET.len());
    }

    #[test]
    fn max_len_is_correct() {
        let longest_adjective = ADJECTIVES.iter().map(|w| w.len()).max().unwrap();
        let longest_noun = NOUNS.iter().map(|w| w.len()).max().unwrap();
        assert_eq!(MAX_LEN, longest_adjective + 1 + longest_noun + 1 + 6);
        // Tripwire: changing the longest word changes MAX_LEN; check column widths, then update.
        assert_eq!(MAX_LEN, 29);
        const { assert!(MAX_LEN <= 50) };

        // The longest combination is itself well-formed and exactly MAX_LEN long.
        let adjective = ADJECTIVES.iter().find(|w| w.len() == longest_adjective).unwrap();
        let noun = NOUNS.iter().find(|w| w.len() == longest_noun).unwrap();
        let id = format!("{adjective}-{noun}-Z9Z9Z9");
        assert_eq!(id.len(), MAX_LEN);
        assert!(is_well_formed(&id));
    }

    #[test]
    fn accepts_the_documented_examples() {
        assert!(is_well_formed("mossy-acorn-8K2PN9"));
        assert!(is_well_formed("weathered-caribou-LTUDFD"));
        assert!(is_well_formed("twilight-alder-GQUNJQ"));
        assert!(is_well_formed("amber-oak-000000"));
    }

    #[test]
    fn rejects_malformed_strings() {
        for bad in [
            "",
            "-",
            "--",
            "mossy",
            "mossy-acorn",
            "mossy-acorn-",
            "mossy-acorn-8K2PN",        // suffix too short
            "mossy-acorn-8K2PN9X",      // suffix too long
            "mossy-acorn-8k2pn9",       // lowercase suffix
            "mossy-acorn-8K2PN_",       // symbol in suffix
            "mossy-acorn-8K2PNÉ",       // non-ASCII in suffix
            "Mossy-acorn-8K2PN9",       // uppercase word
            "mossy-ACORN-8K2PN9",       // uppercase word
            "acorn-mossy-8K2PN9",       // parts swapped
            "shiny-acorn-8K2PN9",       // adjective not in list
            "mossy-spaceship-8K2PN9",   // noun not in list
            "mossy-acorn-8K2PN9-extra", // too many parts
            "mossy--acorn-8K2PN9",      // empty part
            " mossy-acorn-8K2PN9",      // surrounding whitespace
            "mossy-acorn-8K2PN9\n",
            "mossy_acorn_8K2PN9", // wrong separator
            "8K2PN9-mossy-acorn",
        ] {
            assert!(!is_well_formed(bad), "{bad:?} should be rejected");
        }
    }
}
