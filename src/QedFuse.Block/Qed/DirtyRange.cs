namespace QedFuse.Block.Qed;

/// <summary>The span of table entries changed in memory since they were last written.</summary>
internal struct DirtyRange
{
    private int _first;
    private int _last;

    public DirtyRange()
    {
        _first = int.MaxValue;
        _last = -1;
    }

    public readonly bool IsEmpty => _last < 0;

    public readonly int First => _first;

    public readonly int Last => _last;

    public void Mark(int first, int last)
    {
        _first = Math.Min(_first, first);
        _last = Math.Max(_last, last);
    }

    public void Clear() => this = new DirtyRange();
}
