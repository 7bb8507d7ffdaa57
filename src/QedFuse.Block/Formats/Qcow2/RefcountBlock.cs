using System.Buffers.Binary;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Reads and writes entries of a refcount block of any width from 1 to 64 bits. Widths
/// below 8 pack several entries into a byte, lowest bits first; 8 and above are big-endian
/// integers.
/// </summary>
internal static class RefcountBlock
{
    public static ulong Get(ReadOnlySpan<byte> block, long index, int order)
    {
        switch (order)
        {
            case < 3:
                int bits = 1 << order;
                long bit = index << order;
                return (ulong)((block[(int)(bit >> 3)] >> (int)(bit & 7)) & ((1 << bits) - 1));
            case 3:
                return block[(int)index];
            case 4:
                return BinaryPrimitives.ReadUInt16BigEndian(block[(int)(index * 2)..]);
            case 5:
                return BinaryPrimitives.ReadUInt32BigEndian(block[(int)(index * 4)..]);
            default:
                return BinaryPrimitives.ReadUInt64BigEndian(block[(int)(index * 8)..]);
        }
    }

    public static void Set(Span<byte> block, long index, int order, ulong value)
    {
        if (value > MaxValue(order))
        {
            throw new ArgumentOutOfRangeException(nameof(value), $"refcount {value} does not fit in {1 << order} bits");
        }

        switch (order)
        {
            case < 3:
                int bits = 1 << order;
                long bit = index << order;
                int shift = (int)(bit & 7);
                int mask = ((1 << bits) - 1) << shift;
                ref byte b = ref block[(int)(bit >> 3)];
                b = (byte)((b & ~mask) | ((int)value << shift));
                break;
            case 3:
                block[(int)index] = (byte)value;
                break;
            case 4:
                BinaryPrimitives.WriteUInt16BigEndian(block[(int)(index * 2)..], (ushort)value);
                break;
            case 5:
                BinaryPrimitives.WriteUInt32BigEndian(block[(int)(index * 4)..], (uint)value);
                break;
            default:
                BinaryPrimitives.WriteUInt64BigEndian(block[(int)(index * 8)..], value);
                break;
        }
    }

    public static ulong MaxValue(int order) => order == 6 ? ulong.MaxValue : (1UL << (1 << order)) - 1;
}
