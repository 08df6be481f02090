#!/usr/bin/env bash
# Seeds corpus/<target>/ from the cst fixtures in tests/fixtures/hab4/ (see README.md).
# Idempotent: re-running overwrites the same file names. Needs bash, dd and python3.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../../tests/fixtures/hab4

cut() { dd if="$1" bs=1 skip=$(($2)) count=$(($3)) status=none; } # file offset length

for t in ivt boot_data sit csf srk_table x509 cms fit image; do mkdir -p "corpus/$t"; done

for set in ecc-p256 rsa2048; do
    d=$fixtures/$set
    # shellcheck disable=SC1091
    . "$d/layout.env"
    signed=$d/signed.bin
    blob=$((SIGNED_BLOB_SIZE))
    cp "$signed" "corpus/image/$set-signed.bin"
    cp "$signed" "corpus/fit/$set-signed.bin"
    cut "$signed" 0 "$FIT_TOTALSIZE" > "corpus/fit/$set-fit-only.bin"
    cut "$signed" "$IVT_OFFSET" 32 > "corpus/ivt/$set-ivt.bin"
    cut "$signed" "$CSF_OFFSET" $((blob - CSF_OFFSET)) > "corpus/csf/$set-csf.bin"
    cut "$signed" "$CSF_OFFSET" "$CSF_CMDS_LEN" > "corpus/csf/$set-csf-commands-only.bin"
    cut "$signed" "${SRK_TABLE_REC%%:*}" "${SRK_TABLE_REC##*:}" > "corpus/srk_table/$set-srk-table.bin"
    # Certificate and signature record bodies: the DER after each record's 4-byte header.
    for rec in CSFK_CERT_REC IMG_CERT_REC; do
        v=${!rec}; cut "$signed" $((${v%%:*} + 4)) $((${v##*:} - 4)) > "corpus/x509/$set-$rec.der"
    done
    for rec in CSF_SIG_REC IMG_SIG_REC; do
        v=${!rec}; cut "$signed" $((${v%%:*} + 4)) $((${v##*:} - 4)) > "corpus/cms/$set-$rec.der"
    done
    cp "$d"/crts/*.der corpus/x509/ 2>/dev/null || true
    unset UNLOCK_FEATURES
done

# Boot data {start, size, plugin} and SIT inputs (24 bytes of sizes, then the table), as the
# targets read them: a 64 MiB device, 2 MiB primary and copy, the psb.rst table (0x1000).
python3 - <<'PY'
import struct
open("corpus/boot_data/spl.bin", "wb").write(struct.pack("<3I", 0x7E0FC0, 0x30000, 0))
table = struct.pack("<5I", 0, 0, 0x00112233, 0x1000, 0)
open("corpus/sit/psb-rst.bin", "wb").write(struct.pack("<3Q", 64 << 20, 2 << 20, 2 << 20) + table + bytes(492))
PY
# Small FITs for the fit and image targets (the fixture FITs carry 350 KiB of payload): the
# fixture's tree shape with 16-byte payloads, bare and signed (IVT at ALIGN(totalsize, 0x1000),
# then the ecc-p256 CSF, which parses wherever it sits), and as a flash.bin (SPL IVT at 0, FIT
# at the AN12900 FIT offset 0x57C00).
python3 - "$fixtures/ecc-p256/signed.bin" <<'PY'
import struct, sys
signed = open(sys.argv[1], "rb").read()
csf = signed[0x56020:]

def fdt(nodes):
    st, strings = bytearray(), bytearray()
    def tok(*w): st.extend(struct.pack(">%dI" % len(w), *w))
    def pad(): st.extend(bytes(-len(st) % 4))
    def walk(name, props, children):
        tok(1); st.extend(name.encode() + b"\0"); pad()
        for k, v in props:
            key = k.encode() + b"\0"
            if key not in strings: strings.extend(key)
            tok(3, len(v), strings.index(key)); st.extend(v); pad()
        for c in children: walk(*c)
        tok(2)
    walk(*nodes); tok(9)
    off_struct = 40 + 16
    total = off_struct + len(st) + len(strings)
    hdr = struct.pack(">10I", 0xD00DFEED, total, off_struct, off_struct + len(st), 40, 17, 16, 0, len(strings), len(st))
    return hdr + bytes(16) + bytes(st) + bytes(strings)

s = lambda x: x.encode() + b"\0"
u32 = lambda x: struct.pack(">I", x)
image = lambda name, typ, os: (name, [("description", s(name)), ("data", bytes(range(16))), ("type", s(typ)),
                                     ("arch", s("arm64")), ("os", s(os)), ("compression", s("none")),
                                     ("load", u32(0x40200000)), ("entry", u32(0x40200000))], [])
tree = ("", [("description", s("small FIT")), ("#address-cells", u32(1))], [
    ("images", [], [image("uboot", "firmware", "u-boot"), image("atf", "firmware", "arm-trusted-firmware"),
                    ("fdt-1", [("data", bytes(16)), ("type", s("flat_dt")), ("compression", s("none"))], [])]),
    ("configurations", [("default", s("conf-1"))], [
        ("conf-1", [("description", s("conf")), ("firmware", s("uboot")), ("loadables", s("atf")), ("fdt", s("fdt-1"))], [])]),
])
fit = fdt(tree)
load = 0x44000000
ivt_off = (len(fit) + 0xFFF) & ~0xFFF
ivt = bytes([0xD1, 0x00, 0x20, 0x41]) + struct.pack("<7I", load, 0, 0, 0, load + ivt_off, load + ivt_off + 0x20, 0)
signed_small = fit + bytes(ivt_off - len(fit)) + ivt + csf
spl_self = 0x7E0FC0
spl = bytes([0xD1, 0x00, 0x20, 0x41]) + struct.pack("<7I", spl_self + 0x40, 0, 0, spl_self + 0x20, spl_self, 0, 0)
spl += struct.pack("<3I", spl_self, 0x57C00 + len(signed_small), 0)
flash = spl + bytes(0x57C00 - len(spl)) + signed_small
for target in ("fit", "image"):
    open(f"corpus/{target}/small-bare-fit.bin", "wb").write(fit)
    open(f"corpus/{target}/small-signed-fit.bin", "wb").write(signed_small)
open("corpus/image/small-flash.bin", "wb").write(flash)
PY
echo "seeded: $(find corpus -type f | wc -l) files under $(pwd)/corpus"
