namespace QedFuse.Block;

/// <summary>Reads through to a backing image the way an overlay sees it: zeros past its end, or with no backing at all.</summary>
internal static class BackingChain
{
    public static void Read(IBlockImage? backing, long offset, Span<byte> buffer)
    {
        long available = backing is null ? 0 : Math.Clamp(backing.VirtualSize - offset, 0, buffer.Length);
        if (available > 0)
        {
            backing!.Read(offset, buffer[..(int)available]);
        }

        buffer[(int)available..].Clear();
    }
}
