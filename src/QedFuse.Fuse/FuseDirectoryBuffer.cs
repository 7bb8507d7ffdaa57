using System.Text;
using QedFuse.Fuse.Native;

namespace QedFuse.Fuse;

/// <summary>
/// The reply buffer of one readdir request. A file system adds entries starting at the
/// requested offset until <see cref="TryAdd(ReadOnlySpan{byte}, ulong, uint, long)"/>
/// returns false (buffer full); the kernel asks again with the offset of the first entry
/// that did not fit. Lives on the stack and writes into the worker's reusable buffer.
/// </summary>
public unsafe ref struct FuseDirectoryBuffer
{
    private const int MaxName = 255;
    private readonly nint _req;
    private readonly byte* _buffer;
    private readonly nuint _capacity;
    private nuint _used;

    internal FuseDirectoryBuffer(nint req, byte* buffer, nuint capacity)
    {
        _req = req;
        _buffer = buffer;
        _capacity = capacity;
        _used = 0;
    }

    internal readonly nuint Used => _used;

    /// <summary>
    /// Adds one entry. <paramref name="nextOffset"/> is the offset at which a later
    /// readdir must resume to get the entry after this one (e.g. index + 1); it must be
    /// non-zero and strictly increasing. Returns false, adding nothing, when the entry
    /// does not fit.
    /// </summary>
    /// <param name="name">UTF-8 name without NUL, 1..255 bytes, no '/'.</param>
    /// <param name="ino">Inode number of the entry.</param>
    /// <param name="mode">st_mode of the entry; only the file-type bits are used.</param>
    public bool TryAdd(scoped ReadOnlySpan<byte> name, ulong ino, uint mode, long nextOffset)
    {
        if (name.Length is 0 or > MaxName) throw new ArgumentOutOfRangeException(nameof(name));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(nextOffset);
        byte* cname = stackalloc byte[MaxName + 1];
        name.CopyTo(new Span<byte>(cname, MaxName));
        cname[name.Length] = 0;
        Stat st = default;
        st.Ino = ino;
        st.Mode = mode;
        nuint needed = LibFuse.fuse_add_direntry(_req, _buffer + _used, _capacity - _used, cname, &st, nextOffset);
        if (needed > _capacity - _used) return false;
        _used += needed;
        return true;
    }

    /// <summary>String convenience over the UTF-8 overload (encodes on the stack).</summary>
    public bool TryAdd(string name, ulong ino, uint mode, long nextOffset)
    {
        Span<byte> utf8 = stackalloc byte[MaxName * 3];
        if (!Encoding.UTF8.TryGetBytes(name, utf8, out int n)) throw new ArgumentOutOfRangeException(nameof(name));
        return TryAdd(utf8[..n], ino, mode, nextOffset);
    }
}
