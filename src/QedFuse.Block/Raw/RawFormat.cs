namespace QedFuse.Block.Raw;

/// <summary>The raw format: the file is the disk. Recognises anything, so it is probed last.</summary>
public sealed class RawFormat : IImageFormat
{
    public string Name => "raw";

    public bool Probe(ReadOnlySpan<byte> head) => true;

    public IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener)
    {
        return new RawImage(HostFile.Open(path, options));
    }

    public void Create(string path, ImageCreateOptions options, ImageOpener opener)
    {
        if (options.BackingFile is not null)
        {
            throw new BadImageException(path, "the raw format has no backing file");
        }

        if (options.FormatOptions.Count > 0)
        {
            throw new BadImageException(path, $"the raw format takes no -o options (got '{options.FormatOptions.Keys.First()}')");
        }

        long size = options.Size ?? throw new BadImageException(path, "a size is needed");
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, size);
    }
}
