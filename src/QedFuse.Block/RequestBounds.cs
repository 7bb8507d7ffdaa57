using QedFuse.Block.Native;

namespace QedFuse.Block;

/// <summary>The checks every driver applies to a request before touching anything.</summary>
internal static class RequestBounds
{
    public static void CheckRead(IBlockImage image, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > image.VirtualSize - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{image.Path}: request [{offset}, +{length}) outside the virtual size {image.VirtualSize}");
        }
    }

    public static void CheckWrite(IBlockImage image, long offset, long length)
    {
        if (image.IsReadOnly)
        {
            throw new IOException($"{image.Path}: opened read-only", LibC.EROFS);
        }

        CheckRead(image, offset, length);
    }
}
