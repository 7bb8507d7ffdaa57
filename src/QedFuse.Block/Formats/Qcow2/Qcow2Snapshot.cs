using System.Buffers.Binary;
using System.Text;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>One internal snapshot as its table entry describes it.</summary>
internal sealed record Qcow2Snapshot
{
    public required long L1TableOffset { get; init; }
    public required uint L1Size { get; init; }
    public required string Id { get; init; }
    public required string Name { get; init; }
    public uint DateSeconds { get; init; }
    public uint DateNanoseconds { get; init; }
    public ulong VmClockNanoseconds { get; init; }
    public ulong VmStateSize { get; init; }

    /// <summary>The virtual size when the snapshot was taken (v3 extra data), or null when the entry does not say.</summary>
    public ulong? DiskSize { get; init; }

    /// <summary>Instruction count for record/replay (extra data), or null when absent.</summary>
    public long? Icount { get; init; }

    public byte[] ExtraData { get; init; } = [];

    /// <summary>The fixed part of an entry before the extra data.</summary>
    private const int FixedSize = 40;

    /// <summary>QEMU's bound on one entry's extra data.</summary>
    private const int MaxExtraData = 1024;

    /// <summary>
    /// Parses the snapshot table (nb_snapshots entries, each 8-aligned) and
    /// validates each snapshot's L1 table against the file.
    /// </summary>
    public static IReadOnlyList<Qcow2Snapshot> ParseTable(HostFile file, Qcow2Header h, string path, out long tableBytes)
    {
        var list = new List<Qcow2Snapshot>((int)h.SnapshotCount);
        long at = (long)h.SnapshotsOffset;
        long fileLength = file.Length;
        byte[] fixedPart = new byte[FixedSize];
        for (int i = 0; i < h.SnapshotCount; i++)
        {
            void Fail(string problem) => throw new BadImageException(path, $"snapshot table entry {i}: {problem}");

            if (at > fileLength - FixedSize)
            {
                Fail($"lies past the end of the {fileLength}-byte file");
            }

            file.ReadExactly(at, fixedPart);
            ReadOnlySpan<byte> b = fixedPart;
            ulong l1Offset = BinaryPrimitives.ReadUInt64BigEndian(b);
            uint l1Size = BinaryPrimitives.ReadUInt32BigEndian(b[8..]);
            int idSize = BinaryPrimitives.ReadUInt16BigEndian(b[12..]);
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(b[14..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(b[36..]);
            if (extraSize > MaxExtraData)
            {
                Fail($"extra data of {extraSize} bytes is more than {MaxExtraData}");
            }

            long variable = extraSize + idSize + nameSize;
            if (at + FixedSize + variable > fileLength)
            {
                Fail($"lies past the end of the {fileLength}-byte file");
            }

            byte[] rest = new byte[variable];
            file.ReadExactly(at + FixedSize, rest);
            byte[] extra = rest[..(int)extraSize];
            if (l1Offset % (ulong)h.ClusterSize != 0 || (ulong)l1Size * sizeof(ulong) > Qcow2Header.MaxL1Bytes
                || l1Offset > (ulong)fileLength || (ulong)l1Size * sizeof(ulong) > (ulong)fileLength - l1Offset)
            {
                Fail($"L1 table at {l1Offset} with {l1Size} entries is misaligned, too large or outside the file");
            }

            list.Add(new Qcow2Snapshot
            {
                L1TableOffset = (long)l1Offset,
                L1Size = l1Size,
                DateSeconds = BinaryPrimitives.ReadUInt32BigEndian(b[16..]),
                DateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(b[20..]),
                VmClockNanoseconds = BinaryPrimitives.ReadUInt64BigEndian(b[24..]),
                VmStateSize = extraSize >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(extra) : BinaryPrimitives.ReadUInt32BigEndian(b[32..]),
                DiskSize = extraSize >= 16 ? BinaryPrimitives.ReadUInt64BigEndian(extra.AsSpan(8)) : null,
                Icount = extraSize >= 24 ? (long)BinaryPrimitives.ReadUInt64BigEndian(extra.AsSpan(16)) : null,
                ExtraData = extra,
                Id = Encoding.UTF8.GetString(rest, (int)extraSize, idSize),
                Name = Encoding.UTF8.GetString(rest, (int)extraSize + idSize, nameSize),
            });
            at += (FixedSize + variable + 7) & ~7L;
        }

        tableBytes = at - (long)h.SnapshotsOffset;
        return list;
    }
}
