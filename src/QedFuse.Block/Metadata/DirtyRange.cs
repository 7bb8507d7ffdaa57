namespace QedFuse.Block.Metadata;

/// <summary>The span of table entries changed in memory since they were last written.</summary>
/// <remarks>
/// <c>default</c> is the empty range: the struct lives in fields, where no constructor runs
/// (a default that read as "entry 0 dirty" once made a flush write a table still being loaded).
/// </remarks>
internal struct DirtyRange
{
    private int _first;
    private int _end; // exclusive; 0 = empty

    public readonly bool IsEmpty => _end == 0;

    public readonly int First => _first;

    public readonly int Last => _end - 1;

    public void Mark(int first, int last)
    {
        if (IsEmpty)
        {
            _first = first;
            _end = last + 1;
            return;
        }

        _first = Math.Min(_first, first);
        _end = Math.Max(_end, last + 1);
    }

    public void Clear() => this = default;
}
