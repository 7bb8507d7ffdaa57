namespace QedFuse.Block.Tools;

/// <summary>
/// qemu-img commit's copy: every range that a layer above <c>base</c> provides (data, zero
/// clusters, or zeros past the end of a shorter layer) is written into <c>base</c> as the top
/// image shows it; the base grows to the top's size first if it is smaller. The base is
/// synced before this returns, so the caller may then empty the overlay.
/// </summary>
public static class Committer
{
    public static void Commit(IBlockImage top, IBlockImage baseImage, CopySettings settings, CancellationToken cancel)
    {
        int depth = 0;
        for (IBlockImage? layer = top; !ReferenceEquals(layer, baseImage); layer = layer.Backing, depth++)
        {
            if (layer is null)
            {
                throw new BadImageException(baseImage.Path, $"is not in the backing chain of {top.Path}");
            }
        }

        if (depth == 0)
        {
            throw new BadImageException(top.Path, "cannot commit an image into itself");
        }

        if (baseImage.VirtualSize < top.VirtualSize)
        {
            baseImage.Resize(top.VirtualSize);
        }

        if (settings.Progress is { } p)
        {
            p.Total = top.VirtualSize;
        }

        var ranges = ChainMap.Walk(top, 0, top.VirtualSize)
            .Where(r =>
            {
                if (r.Depth >= depth)
                {
                    settings.Progress?.Add(r.Length);
                }

                return r.Depth < depth;
            })
            .Select(r => new CopyRange(r.Start, r.Length, !r.Data));
        ImageCopier.Copy(top, baseImage, ranges, settings with { TargetReadsZero = false, Baseline = null }, cancel);
        baseImage.Flush();
    }
}
