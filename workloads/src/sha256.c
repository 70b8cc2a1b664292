/*
 * sha256: SHA-256 (FIPS 180-4, own implementation) and CRC-32 (IEEE 802.3, reflected,
 * table-driven) over LCG-generated data, produced and hashed in 64 KiB chunks so the
 * memory footprint stays small whatever the size.
 *
 *   sha256 [bytes=16M] [--m5=inst|addr]
 *
 * Data: each 4-byte little-endian word is the next lcg_next() value (seed 1), so
 * digests can be reproduced outside the program.
 * Self-checks: the FIPS "abc", empty and two-block test vectors, the CRC-32 check value
 * of "123456789", and for the sizes in workloads.json the digest and CRC of the
 * generated data against values computed by an independent implementation (Python's
 * hashlib and zlib).
 */
#include "rt.h"

struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    uint64_t total;  /* bytes hashed so far */
    size_t fill;     /* bytes waiting in block */
};

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t iv[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(s->h, iv, sizeof iv);
    s->total = 0;
    s->fill = 0;
}

static void sha256_update(struct sha256 *s, const uint8_t *p, size_t len)
{
    s->total += len;
    if (s->fill > 0) {
        size_t n = 64 - s->fill;
        if (n > len)
            n = len;
        memcpy(s->block + s->fill, p, n);
        s->fill += n;
        p += n;
        len -= n;
        if (s->fill < 64)
            return;
        sha256_block(s->h, s->block);
        s->fill = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha256_block(s->h, p);
    memcpy(s->block, p, len);
    s->fill = len;
}

static void sha256_final(struct sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72];
    size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;  /* 0x80, zeros, up to 56 mod 64 */
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        fmt_hex(out + 2 * i, d[i], 2);
    out[2 * n] = 0;
}

static void check_vector(const char *msg, const char *want_hex)
{
    struct sha256 s;
    uint8_t d[32];
    char hex[65];
    sha256_init(&s);
    sha256_update(&s, (const uint8_t *)msg, strlen(msg));
    sha256_final(&s, d);
    to_hex(d, 32, hex);
    CHECK(strcmp(hex, want_hex) == 0, "SHA-256 test vector mismatch");
}

static uint32_t crc_table[256];

static void crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* Running CRC: start with crc = 0; the pre/post inversion is done here. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#define CHUNK 65536
static uint8_t chunk[CHUNK];

static const struct {
    uint64_t bytes;
    const char *sha;
    uint32_t crc;
} golden[] = {
    { 4096, "313bb54f937aa29f40ec23fc18ef9920612fd94a469ce50f219d48dda0d94a7d", 0xc483668eu },        /* testArgs */
    { 16ull << 20, "6f15cf1496a7688c6997a02d032381d43d51ab085e6c3f4637b8d54f440abd95", 0xb6c032ceu }, /* default */
};

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t bytes = arg_u64(argc, argv, 1, 16ull << 20);

    check_vector("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_vector("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_vector("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    crc32_init();
    CHECK(crc32_update(0, (const uint8_t *)"123456789", 9) == 0xcbf43926u, "CRC-32 check value mismatch");

    roi_begin();
    struct sha256 s;
    sha256_init(&s);
    uint32_t crc = 0;
    uint64_t seed = 1;
    for (uint64_t done = 0; done < bytes;) {
        size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
        for (size_t i = 0; i < n; i += 4) {
            uint32_t w = lcg_next(&seed);
            for (size_t b = 0; b < 4 && i + b < n; b++)
                chunk[i + b] = (uint8_t)(w >> (8 * b));
        }
        sha256_update(&s, chunk, n);
        crc = crc32_update(crc, chunk, n);
        done += n;
    }
    uint8_t digest[32];
    sha256_final(&s, digest);
    roi_end();

    char hex[65];
    to_hex(digest, 32, hex);
    int checked = 0;
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        if (golden[i].bytes == bytes) {
            CHECK(strcmp(hex, golden[i].sha) == 0, "SHA-256 of the generated data differs from the golden value");
            CHECK(crc == golden[i].crc, "CRC-32 of the generated data differs from the golden value");
            checked = 1;
        }
    }
    print_str("test vectors: ok\n");
    print_str(checked ? "golden: match\n" : "golden: none\n");
    print_kv_u64("bytes", bytes);
    print_str("sha256 ");
    print_str(hex);
    print_char('\n');
    print_kv_hex("crc32", crc, 8);
    print_str("OK\n");
    return 0;
}
