//! The built executable keeps the toolchain's hardening (SPEC §7: never traded for start-up
//! time): position-independent, so address-space randomisation covers it, and full RELRO
//! (relocations resolved at load, then read-only).

const ET_DYN: u16 = 3;
const PT_DYNAMIC: u32 = 2;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const DT_NULL: u64 = 0;
const DT_BIND_NOW: u64 = 24;
const DT_FLAGS: u64 = 30;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_BIND_NOW: u64 = 0x8;
const DF_1_NOW: u64 = 0x1;
const DF_1_PIE: u64 = 0x0800_0000;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The program headers of a 64-bit little-endian ELF file: (type, file offset, file size).
fn program_headers(elf: &[u8]) -> Vec<(u32, usize, usize)> {
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 32) as usize,
        u16_at(elf, 54) as usize,
        u16_at(elf, 56) as usize,
    );
    (0..phnum)
        .map(|i| {
            let h = phoff + i * phentsize;
            (
                u32_at(elf, h),
                u64_at(elf, h + 8) as usize,
                u64_at(elf, h + 32) as usize,
            )
        })
        .collect()
}

/// The dynamic section's entries, up to `DT_NULL`.
fn dynamic_entries(elf: &[u8]) -> Vec<(u64, u64)> {
    let Some((_, offset, size)) = program_headers(elf)
        .into_iter()
        .find(|(kind, _, _)| *kind == PT_DYNAMIC)
    else {
        return Vec::new();
    };
    elf[offset..offset + size]
        .chunks_exact(16)
        .map(|e| (u64_at(e, 0), u64_at(e, 8)))
        .take_while(|(tag, _)| *tag != DT_NULL)
        .collect()
}

#[test]
fn the_binary_is_position_independent_with_full_relro() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_berth")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!((elf[4], elf[5]), (2, 1), "a 64-bit little-endian ELF file");
    assert_eq!(
        u16_at(&elf, 16),
        ET_DYN,
        "position-independent (ET_DYN), not EXEC"
    );
    let dynamic = dynamic_entries(&elf);
    let flag = |tag: u64| dynamic.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    assert!(
        flag(DT_FLAGS_1).is_some_and(|f| f & DF_1_PIE != 0),
        "FLAGS_1 has PIE: {dynamic:x?}"
    );
    let bind_now = flag(DT_BIND_NOW).is_some()
        || flag(DT_FLAGS).is_some_and(|f| f & DF_BIND_NOW != 0)
        || flag(DT_FLAGS_1).is_some_and(|f| f & DF_1_NOW != 0);
    assert!(bind_now, "BIND_NOW: {dynamic:x?}");
    assert!(
        program_headers(&elf)
            .iter()
            .any(|(kind, _, _)| *kind == PT_GNU_RELRO),
        "a RELRO segment"
    );
}
