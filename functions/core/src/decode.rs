//! File decoding for imports (being written).
