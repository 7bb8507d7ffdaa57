namespace QedFuse.Block.Tests;

/// <summary>
/// Allocating writes racing the flusher, replayed step by step with <see cref="FaultHook"/>
/// pauses instead of hoped-for timing. A flush pass trims the file's grow-ahead tail; a trim to
/// a stale end (or a flush that drops a table being filled) would lose data written meanwhile
/// past the end that pass saw.
/// </summary>
public class FlushRaceTests
{
    private const int C = 4096;
    private const long Size = 16L << 20;

    public enum PausePoint
    {
        /// <summary>The writer has grown the file and reserved its cluster, and waits before writing data; a whole flush pass runs.</summary>
        WriterBeforeData,

        /// <summary>The flusher waits at its first sync (metadata taken, nothing written); an allocating write runs to completion.</summary>
        FlusherAtFirstSync,

        /// <summary>The flusher waits before its L2 writes; an allocating write into the same table runs to completion.</summary>
        FlusherBeforeL2Write,
    }

    [Theory]
    [InlineData(PausePoint.WriterBeforeData)]
    [InlineData(PausePoint.FlusherAtFirstSync)]
    [InlineData(PausePoint.FlusherBeforeL2Write)]
    public void AllocatingWriteInterleavedWithAFlushLosesNothing(PausePoint point)
    {
        using var dir = new TempDir();
        string img = dir.File("race.qed");
        Engine.CreateQed(img, Size, C, 2);
        byte[] reference = new byte[Size];
        var hook = new FaultHook();
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { HostFileHook = hook }))
        {
            // Need-check set and a table dirty, so the flush pass below has work (and no header rewrite to hold a lock).
            Write(image, reference, 0, 1);

            Background background;
            switch (point)
            {
                case PausePoint.WriterBeforeData:
                    Flush(image); // no grow-ahead tail left: the next allocation must grow the file
                    background = new Background(() => Write(image, reference, 3 * C, 2));
                    hook.PauseAt((e, _, _) => e == IoEvent.DataWrite && Environment.CurrentManagedThreadId == background.ThreadId);
                    background.Start();
                    hook.WaitUntilPaused();
                    Write(image, reference, 5 * C, 3); // dirties the same table again
                    Flush(image);                    // a full pass, trim included, while the reserved cluster is unwritten
                    hook.Resume();
                    break;
                default:
                    IoEvent at = point == PausePoint.FlusherAtFirstSync ? IoEvent.Flush : IoEvent.L2Update;
                    Write(image, reference, 2 * C, 2);
                    background = new Background(image.Flush);
                    hook.PauseAt((e, _, _) => (e == at || (at == IoEvent.L2Update && e == IoEvent.L2Alloc)) && Environment.CurrentManagedThreadId == background.ThreadId);
                    background.Start();
                    hook.WaitUntilPaused();
                    Write(image, reference, 7 * C, 4);          // same table, fresh cluster at the end of the file
                    Write(image, reference, 5L << 20, 5);       // a new table, so the file grows past the end the flusher saw
                    hook.Resume();
                    break;
            }

            background.Join();
            Flush(image);
            byte[] all = new byte[Size];
            image.Read(0, all);
            Files.AssertBytesEqual(reference, all, 0, "engine read-back");
        }

        Qemu.AssertClean(img);
        File.WriteAllBytes(dir.File("ref.raw"), reference);
        Qemu.AssertSameAsRaw(img, dir.File("ref.raw"));
    }

    private static void Write(IBlockImage image, byte[] reference, long offset, int seed)
    {
        byte[] data = Engine.Pattern(100, seed);
        image.Write(offset, data);
        data.CopyTo(reference, offset);
    }

    private static void Flush(IBlockImage image) => image.Flush();

    /// <summary>A thread whose id is known before it starts (for the pause predicate) and whose failure fails the test.</summary>
    private sealed class Background
    {
        private readonly Thread _thread;
        private Exception? _failure;

        public Background(Action action)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    _failure = e;
                }
            });
            ThreadId = _thread.ManagedThreadId;
        }

        public int ThreadId { get; }

        public void Start() => _thread.Start();

        public void Join()
        {
            Assert.True(_thread.Join(TimeSpan.FromSeconds(60)), "the background thread did not finish");
            Assert.Null(_failure);
        }
    }
}
