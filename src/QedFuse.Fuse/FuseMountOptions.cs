using System.Text;

namespace QedFuse.Fuse;

/// <summary>Mount and connection options of a <see cref="FuseSession"/>.</summary>
public sealed class FuseMountOptions
{
    /// <summary>argv[0] handed to libfuse (shows up in its messages).</summary>
    public string ProgramName { get; init; } = "qedfuse";

    /// <summary>First column of /proc/mounts (<c>-o fsname=</c>); null = libfuse's default.</summary>
    public string? FsName { get; init; }

    /// <summary>Type shown as <c>fuse.SUBTYPE</c> (<c>-o subtype=</c>).</summary>
    public string? Subtype { get; init; }

    /// <summary>Mount read-only (<c>-o ro</c>): the kernel refuses writes before they reach us.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Let users other than the mounting one in (<c>-o allow_other</c>; non-root needs user_allow_other in /etc/fuse.conf).</summary>
    public bool AllowOther { get; init; }

    /// <summary>
    /// Let the kernel check permissions from mode/uid/gid (<c>-o default_permissions</c>).
    /// On by default because the binding has no access() op: without it every user that
    /// can reach the mount may do anything the file system allows.
    /// </summary>
    public bool DefaultPermissions { get; init; } = true;

    /// <summary>
    /// <c>-o auto_unmount</c>: fusermount3 stays around and unmounts when this process dies
    /// (even by SIGKILL), so no stale "Transport endpoint is not connected" mount remains.
    /// Needs fusermount3 (package fuse3); with it libfuse mounts through fusermount3 even as root.
    /// </summary>
    public bool AutoUnmount { get; init; } = true;

    /// <summary><c>-o max_read=</c> (0 = not set). Limits the size of read requests.</summary>
    public uint MaxRead { get; init; }

    /// <summary>Largest write (and, through max_pages, read) request; default 1 MiB.</summary>
    public uint MaxWrite { get; init; } = 1024 * 1024;

    /// <summary>Readahead to ask for at INIT (0 = keep the kernel's offer; the kernel never raises it above its own value).</summary>
    public uint MaxReadahead { get; init; }

    /// <summary>
    /// Ask for WRITEBACK_CACHE (the kernel buffers writes and sends them later). Off by
    /// default: it batches small writes, but a write error then surfaces late and
    /// durability hinges on fsync alone.
    /// </summary>
    public bool WritebackCache { get; init; }

    /// <summary>Seconds the kernel may cache attributes from getattr/lookup.</summary>
    public double AttrTimeout { get; init; } = 1.0;

    /// <summary>Seconds the kernel may cache name lookups.</summary>
    public double EntryTimeout { get; init; } = 1.0;

    /// <summary>The default for <see cref="Threads"/>: max(4, 2 x processors).</summary>
    public static int DefaultThreads { get; } = Math.Max(4, Environment.ProcessorCount * 2);

    /// <summary>Worker threads serving requests.</summary>
    public int Threads { get; init; } = DefaultThreads;

    /// <summary>Further raw <c>-o</c> options (e.g. "noatime").</summary>
    public IReadOnlyList<string> ExtraOptions { get; init; } = [];

    /// <summary>The comma-separated <c>-o</c> string handed to libfuse.</summary>
    internal string BuildOptionString()
    {
        var opts = new List<string>();
        if (FsName is not null) opts.Add("fsname=" + Escape(FsName));
        if (Subtype is not null) opts.Add("subtype=" + Escape(Subtype));
        if (ReadOnly) opts.Add("ro");
        if (AllowOther) opts.Add("allow_other");
        if (DefaultPermissions) opts.Add("default_permissions");
        if (AutoUnmount) opts.Add("auto_unmount");
        if (MaxRead != 0) opts.Add("max_read=" + MaxRead);
        opts.AddRange(ExtraOptions);
        return string.Join(',', opts);
    }

    /// <summary>fuse_opt treats ',' as a separator and '\' as an escape.</summary>
    private static string Escape(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (char c in value)
        {
            if (c is ',' or '\\') sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
