namespace QedFuse.Block.Metadata;

/// <summary>
/// One write-back pass as a format hands it to its flusher: the dirty metadata copied out
/// under the gate, in its ordered stages, and what to do once the writes are durable (or
/// failed): unpin the tables, apply what the pass made safe. Entries changed while the pass
/// writes (whose data may not be durable yet) stay out of it.
/// </summary>
internal sealed record FlushPass(StagedWriteBack Writes, Action<bool> Complete);
