using System.Buffers.Binary;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>
/// Deterministic structure-aware mutations of a seed image: everything follows from one
/// integer seed, so a failing case is reproduced by its seed alone.
/// </summary>
public static class Mutator
{
    private static readonly (int Offset, int Size, string Name)[] HeaderFields =
    [
        (0, 4, "magic"), (4, 4, "cluster_size"), (8, 4, "table_size"), (12, 4, "header_size"),
        (16, 8, "features"), (24, 8, "compat_features"), (32, 8, "autoclear_features"),
        (40, 8, "l1_table_offset"), (48, 8, "image_size"), (56, 4, "backing_filename_offset"),
        (60, 4, "backing_filename_size"),
    ];

    private static readonly byte[] InterestingBytes = [0, 1, 0x7f, 0x80, 0xff, 0x2f, 0x2e, 0x10, 0x40, 0x0a];

    /// <summary>Returns the mutated image and a one-line description of each mutation.</summary>
    public static (byte[] Bytes, List<string> Steps) Mutate(SeedImage seed, int caseSeed)
    {
        var rng = new Random(caseSeed);
        byte[] b = (byte[])seed.Bytes.Clone();
        var steps = new List<string>();
        int count = 1 + (rng.Next(8) switch { < 4 => 0, < 6 => 1, < 7 => 2, _ => 3 });
        for (int k = 0; k < count; k++)
        {
            b = MutateOnce(seed, b, rng, steps);
        }

        return (b, steps);
    }

    private static byte[] MutateOnce(SeedImage s, byte[] b, Random rng, List<string> steps)
    {
        if (b.Length == 0)
        {
            return b;
        }

        switch (rng.Next(100))
        {
            case < 22: // header field set to an interesting value
            {
                var (off, size, name) = HeaderFields[rng.Next(HeaderFields.Length)];
                ulong v = Interesting(s, b, rng);
                Put(b, off, size, v);
                steps.Add($"header {name} = 0x{v:x}");
                return b;
            }

            case < 34: // bit flips in the header (+ backing name)
            {
                int flips = 1 + rng.Next(3);
                for (int i = 0; i < flips; i++)
                {
                    int at = rng.Next(Math.Min(b.Length, s.BackingNameEnd));
                    int bit = rng.Next(8);
                    b[at] ^= (byte)(1 << bit);
                    steps.Add($"flip byte {at} bit {bit}");
                }

                return b;
            }

            case < 40: // header / backing-name byte set to an interesting byte
            {
                int at = rng.Next(Math.Min(b.Length, s.BackingNameEnd));
                byte v = InterestingBytes[rng.Next(InterestingBytes.Length)];
                b[at] = v;
                steps.Add($"byte {at} = 0x{v:x2}");
                return b;
            }

            case < 56: // L1 entry
            {
                int entries = s.TableBytes / 8;
                int index = rng.Next(3) == 0 ? rng.Next(entries) : UsedIndex(b, s.L1Offset, entries, rng);
                long at = s.L1Offset + index * 8L;
                if (at + 8 > b.Length)
                {
                    return b;
                }

                ulong v = rng.Next(4) == 0 ? ReadU64(b, at) ^ (1UL << rng.Next(64)) : Interesting(s, b, rng);
                Put(b, (int)at, 8, v);
                steps.Add($"L1[{index}] = 0x{v:x}");
                return b;
            }

            case < 78: // L2 entry
            {
                long table = s.L2Offsets[rng.Next(s.L2Offsets.Length)];
                int entries = s.TableBytes / 8;
                int index = rng.Next(3) == 0 ? rng.Next(entries) : UsedIndex(b, table, entries, rng);
                long at = table + index * 8L;
                if (at + 8 > b.Length)
                {
                    return b;
                }

                ulong v = rng.Next(4) == 0 ? ReadU64(b, at) ^ (1UL << rng.Next(64)) : Interesting(s, b, rng);
                Put(b, (int)at, 8, v);
                steps.Add($"L2@{table}[{index}] = 0x{v:x}");
                return b;
            }

            case < 84: // bit flips anywhere in the tables
            {
                long table = rng.Next(3) == 0 ? s.L1Offset : s.L2Offsets[rng.Next(s.L2Offsets.Length)];
                long at = table + rng.Next(s.TableBytes);
                if (at < b.Length)
                {
                    int bit = rng.Next(8);
                    b[at] ^= (byte)(1 << bit);
                    steps.Add($"flip table byte {at} bit {bit}");
                }

                return b;
            }

            case < 93: // truncation: at a structural boundary or anywhere
            {
                long[] marks =
                [
                    0, 3, 63, 64, s.BackingNameEnd, s.HeaderBytes, s.HeaderBytes + 8, s.L1Offset + s.TableBytes / 2,
                    s.L1Offset + s.TableBytes, s.L2Offsets[^1] + s.TableBytes - 1, b.Length - 1, b.Length - s.ClusterSize,
                    b.Length - s.ClusterSize - 1, rng.NextInt64(b.Length + 1),
                ];
                long len = Math.Clamp(marks[rng.Next(marks.Length)], 0, b.Length);
                steps.Add($"truncate to {len}");
                return b[..(int)len];
            }

            default: // extension: a partial cluster, whole clusters, garbage or zeros
            {
                int extra = rng.Next(4) switch
                {
                    0 => 1 + rng.Next(511),
                    1 => (int)s.ClusterSize,
                    2 => (int)s.ClusterSize * (1 + rng.Next(4)) + rng.Next(2) * 512,
                    _ => 1 + rng.Next(1 << 20),
                };
                var grown = new byte[b.Length + extra];
                b.CopyTo(grown, 0);
                bool garbage = rng.Next(2) == 0;
                if (garbage)
                {
                    rng.NextBytes(grown.AsSpan(b.Length));
                }

                steps.Add($"extend by {extra} {(garbage ? "random" : "zero")} bytes");
                return grown;
            }
        }
    }

    private static int UsedIndex(byte[] b, long table, int entries, Random rng)
    {
        var used = new List<int>();
        for (int i = 0; i < entries && table + i * 8L + 8 <= b.Length; i++)
        {
            if (ReadU64(b, table + i * 8L) != 0)
            {
                used.Add(i);
            }
        }

        return used.Count > 0 ? used[rng.Next(used.Count)] : rng.Next(entries);
    }

    /// <summary>Values that sit on the edges the parser and the mapper must get right.</summary>
    private static ulong Interesting(SeedImage s, byte[] b, Random rng)
    {
        ulong c = s.ClusterSize;
        ulong len = (ulong)b.Length;
        ulong[] values =
        [
            0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 511, 512, 4096, 65536, c - 1, c, c + 1, 2 * c,
            (ulong)s.HeaderBytes, (ulong)s.HeaderBytes - c, (ulong)s.L1Offset, (ulong)s.L1Offset + 8,
            (ulong)s.L2Offsets[rng.Next(s.L2Offsets.Length)],
            s.DataOffsets.Length > 0 ? (ulong)s.DataOffsets[rng.Next(s.DataOffsets.Length)] : c,
            len, len - c, len + c, len / c * c, (len / c - 1) * c, len - 1,
            0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 1UL << 40, 1UL << 46, 1UL << 62,
            0x7fffffffffffffff, 0x8000000000000000, 0xffffffffffffffff, 0xffffffffffffffff - c + 1,
            0xfffffffffffffe00, 1UL << rng.Next(64), (ulong)rng.NextInt64() | (1UL << 63),
        ];
        return values[rng.Next(values.Length)];
    }

    private static ulong ReadU64(byte[] b, long at) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)at));

    private static void Put(byte[] b, int off, int size, ulong v)
    {
        if (off + size > b.Length)
        {
            return;
        }

        if (size == 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(off), (uint)v);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(off), v);
        }
    }
}
