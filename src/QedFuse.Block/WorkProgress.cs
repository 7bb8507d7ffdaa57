namespace QedFuse.Block;

/// <summary>
/// How far a long operation (convert, commit, rebase, compare, check) has got, in units of
/// its own choosing (bytes, tables). Written by the workers, read by whoever shows progress;
/// safe to share between threads.
/// </summary>
public sealed class WorkProgress
{
    private long _total = 1;
    private long _done;

    /// <summary>The amount of work in all; set before the work starts (at least 1).</summary>
    public long Total
    {
        get => Interlocked.Read(ref _total);
        set => Interlocked.Exchange(ref _total, Math.Max(1, value));
    }

    public long Done => Interlocked.Read(ref _done);

    /// <summary>Done as a percentage, 0..100.</summary>
    public double Percent => Math.Clamp(100.0 * Done / Total, 0, 100);

    public void Add(long amount) => Interlocked.Add(ref _done, amount);

    /// <summary>Marks everything done (work that finished early, as by skipping what needed nothing).</summary>
    public void Complete() => Interlocked.Exchange(ref _done, Total);
}
