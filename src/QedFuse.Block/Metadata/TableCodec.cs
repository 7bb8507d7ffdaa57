using System.Buffers;
using System.Buffers.Binary;

namespace QedFuse.Block.Metadata;

/// <summary>
/// Reads and encodes tables of u64 entries in a format's byte order (QED little-endian, qcow2
/// big-endian). Partial writes go out in whole 512-byte sectors, so an update never rewrites
/// a whole table.
/// </summary>
internal sealed class TableCodec
{
    public const int SectorSize = 512;
    public const int EntriesPerSector = SectorSize / sizeof(ulong);

    public static readonly TableCodec LittleEndian = new(bigEndian: false);
    public static readonly TableCodec BigEndian = new(bigEndian: true);

    private readonly bool _bigEndian;

    private TableCodec(bool bigEndian) => _bigEndian = bigEndian;

    public ulong Decode(ReadOnlySpan<byte> b) =>
        _bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b);

    public void Encode(Span<byte> b, ulong value)
    {
        if (_bigEndian)
        {
            BinaryPrimitives.WriteUInt64BigEndian(b, value);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        }
    }

    /// <summary>Reads <paramref name="entries"/>.Length entries at <paramref name="offset"/> (zeros past the end of the file).</summary>
    public void Read(HostFile file, long offset, Span<ulong> entries)
    {
        int bytes = entries.Length * sizeof(ulong);
        byte[] buf = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            file.ReadExactly(offset, buf.AsSpan(0, bytes));
            for (int i = 0; i < entries.Length; i++)
            {
                entries[i] = Decode(buf.AsSpan(i * sizeof(ulong)));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>Serialises entries [first, first+count) into a new buffer for a later write.</summary>
    public byte[] Encode(ReadOnlySpan<ulong> entries, int first, int count)
    {
        byte[] buf = new byte[count * sizeof(ulong)];
        for (int i = 0; i < count; i++)
        {
            Encode(buf.AsSpan(i * sizeof(ulong)), entries[first + i]);
        }

        return buf;
    }

    /// <summary>The sector-aligned entry range that covers entries [first, last] of a table of <paramref name="tableEntries"/>.</summary>
    public static (int First, int Count) SectorRange(int first, int last, int tableEntries)
    {
        int start = first / EntriesPerSector * EntriesPerSector;
        int end = Math.Min(tableEntries, (last / EntriesPerSector + 1) * EntriesPerSector);
        return (start, end - start);
    }
}
