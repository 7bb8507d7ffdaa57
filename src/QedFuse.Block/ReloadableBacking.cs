namespace QedFuse.Block;

/// <summary>
/// A layer's backing image across metadata reloads (IBlockImage.Reload): reloaded in place
/// while the header names the same file and format, reopened when it names another. A
/// replaced backing image stays open until the layer closes, since a read that began before
/// the reload may still be using it.
/// </summary>
internal sealed class ReloadableBacking : IDisposable
{
    private readonly List<IBlockImage> _retired = [];

    public ReloadableBacking(IBlockImage? initial) => Current = initial;

    public IBlockImage? Current { get; private set; }

    /// <summary>
    /// The backing image for the reloaded header: the current one reloaded when <paramref name="same"/>,
    /// else a new one opened for <paramref name="name"/> (null: none). Call <see cref="Commit"/> with it
    /// once the rest of the reload has succeeded.
    /// </summary>
    public IBlockImage? Prepare(string ownerPath, bool same, string? name, string? format, ImageOpenOptions options)
    {
        if (same)
        {
            Current?.Reload();
            return Current;
        }

        return name is null ? null : new ImageOpener().OpenBacking(ownerPath, name, format, options);
    }

    public void Commit(IBlockImage? backing)
    {
        if (backing == Current)
        {
            return;
        }

        if (Current is not null)
        {
            _retired.Add(Current);
        }

        Current = backing;
    }

    public void Dispose()
    {
        Current?.Dispose();
        _retired.ForEach(b => b.Dispose());
    }
}
