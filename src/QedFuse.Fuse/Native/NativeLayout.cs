using System.Numerics;

namespace QedFuse.Fuse.Native;

/// <summary>What a <see cref="LayoutFact"/> measures.</summary>
internal enum FactKind
{
    /// <summary>sizeof(Type).</summary>
    Size,
    /// <summary>offsetof(Type, Member).</summary>
    Offset,
    /// <summary>Bit position (byte offset * 8 + bit) of a one-bit bitfield Member of Type.</summary>
    Bit,
    /// <summary>Value of the C constant expression Member.</summary>
    Constant,
}

/// <summary>One number the binding assumes about the C ABI.</summary>
internal readonly record struct LayoutFact(FactKind Kind, string Type, string Member, long Value)
{
    public override string ToString() => Kind switch
    {
        FactKind.Size => $"sizeof({Type})",
        FactKind.Offset => $"offsetof({Type}, {Member})",
        FactKind.Bit => $"bit({Type}, {Member})",
        _ => Member,
    };
}

/// <summary>
/// Every size, offset, bit and constant the binding relies on, measured from the managed
/// definitions. The layout test compares each with what gcc says about the real headers,
/// so a libfuse/glibc ABI change fails a test instead of corrupting memory.
/// </summary>
internal static unsafe class NativeLayout
{
    public static IReadOnlyList<LayoutFact> Facts()
    {
        var f = new List<LayoutFact>();
        void Size(string type, int size) => f.Add(new LayoutFact(FactKind.Size, type, "", size));
        void Off(string type, string member, void* field, void* start) =>
            f.Add(new LayoutFact(FactKind.Offset, type, member, (byte*)field - (byte*)start));
        void Const(string name, long value) => f.Add(new LayoutFact(FactKind.Constant, "", name, value));

        const string Ops = "struct fuse_lowlevel_ops";
        FuseLowLevelOps ops;
        Size(Ops, sizeof(FuseLowLevelOps));
        Off(Ops, "init", &ops.Init, &ops);
        Off(Ops, "destroy", &ops.Destroy, &ops);
        Off(Ops, "lookup", &ops.Lookup, &ops);
        Off(Ops, "getattr", &ops.GetAttr, &ops);
        Off(Ops, "setattr", &ops.SetAttr, &ops);
        Off(Ops, "open", &ops.Open, &ops);
        Off(Ops, "read", &ops.Read, &ops);
        Off(Ops, "write", &ops.Write, &ops);
        Off(Ops, "flush", &ops.Flush, &ops);
        Off(Ops, "release", &ops.Release, &ops);
        Off(Ops, "fsync", &ops.Fsync, &ops);
        Off(Ops, "readdir", &ops.ReadDir, &ops);
        Off(Ops, "statfs", &ops.StatFs, &ops);
        Off(Ops, "write_buf", &ops.WriteBuf, &ops);
        Off(Ops, "fallocate", &ops.Fallocate, &ops);
        Off(Ops, "lseek", &ops.Lseek, &ops);

        const string Fi = "struct fuse_file_info";
        FuseFileInfo fi;
        Size(Fi, sizeof(FuseFileInfo));
        Off(Fi, "flags", &fi.Flags, &fi);
        Off(Fi, "fh", &fi.Fh, &fi);
        Off(Fi, "lock_owner", &fi.LockOwner, &fi);
        Off(Fi, "poll_events", &fi.PollEvents, &fi);
        long word = (byte*)&fi.BitFields - (byte*)&fi;
        void Bit(string member, uint mask) =>
            f.Add(new LayoutFact(FactKind.Bit, Fi, member, word * 8 + BitOperations.TrailingZeroCount(mask)));
        Bit("writepage", FuseFileInfo.WritePageBit);
        Bit("direct_io", FuseFileInfo.DirectIoBit);
        Bit("keep_cache", FuseFileInfo.KeepCacheBit);
        Bit("flush", FuseFileInfo.FlushBit);
        Bit("nonseekable", FuseFileInfo.NonSeekableBit);

        const string St = "struct stat";
        Stat st;
        Size(St, sizeof(Stat));
        Off(St, "st_dev", &st.Dev, &st);
        Off(St, "st_ino", &st.Ino, &st);
        Off(St, "st_nlink", &st.NLink, &st);
        Off(St, "st_mode", &st.Mode, &st);
        Off(St, "st_uid", &st.Uid, &st);
        Off(St, "st_gid", &st.Gid, &st);
        Off(St, "st_rdev", &st.RDev, &st);
        Off(St, "st_size", &st.Size, &st);
        Off(St, "st_blksize", &st.BlkSize, &st);
        Off(St, "st_blocks", &st.Blocks, &st);
        Off(St, "st_atim", &st.ATime, &st);
        Off(St, "st_mtim", &st.MTime, &st);
        Off(St, "st_ctim", &st.CTime, &st);
        Size("struct timespec", sizeof(Timespec));
        Timespec ts;
        Off("struct timespec", "tv_nsec", &ts.NSec, &ts);

        const string Ep = "struct fuse_entry_param";
        FuseEntryParam ep;
        Size(Ep, sizeof(FuseEntryParam));
        Off(Ep, "ino", &ep.Ino, &ep);
        Off(Ep, "generation", &ep.Generation, &ep);
        Off(Ep, "attr", &ep.Attr, &ep);
        Off(Ep, "attr_timeout", &ep.AttrTimeout, &ep);
        Off(Ep, "entry_timeout", &ep.EntryTimeout, &ep);

        const string Ci = "struct fuse_conn_info";
        FuseConnInfo ci;
        Size(Ci, sizeof(FuseConnInfo));
        Off(Ci, "proto_major", &ci.ProtoMajor, &ci);
        Off(Ci, "proto_minor", &ci.ProtoMinor, &ci);
        Off(Ci, "max_write", &ci.MaxWrite, &ci);
        Off(Ci, "max_read", &ci.MaxRead, &ci);
        Off(Ci, "max_readahead", &ci.MaxReadahead, &ci);
        Off(Ci, "capable", &ci.Capable, &ci);
        Off(Ci, "want", &ci.Want, &ci);
        Off(Ci, "max_background", &ci.MaxBackground, &ci);
        Off(Ci, "congestion_threshold", &ci.CongestionThreshold, &ci);
        Off(Ci, "time_gran", &ci.TimeGran, &ci);

        const string Buf = "struct fuse_buf";
        FuseBuf buf;
        Size(Buf, sizeof(FuseBuf));
        Off(Buf, "size", &buf.Size, &buf);
        Off(Buf, "flags", &buf.Flags, &buf);
        Off(Buf, "mem", &buf.Mem, &buf);
        Off(Buf, "fd", &buf.Fd, &buf);
        Off(Buf, "pos", &buf.Pos, &buf);

        const string Args = "struct fuse_args";
        FuseArgs args;
        Size(Args, sizeof(FuseArgs));
        Off(Args, "argc", &args.Argc, &args);
        Off(Args, "argv", &args.Argv, &args);
        Off(Args, "allocated", &args.Allocated, &args);

        const string Sv = "struct statvfs";
        StatVfs sv;
        Size(Sv, sizeof(StatVfs));
        Off(Sv, "f_bsize", &sv.BSize, &sv);
        Off(Sv, "f_frsize", &sv.FrSize, &sv);
        Off(Sv, "f_blocks", &sv.Blocks, &sv);
        Off(Sv, "f_bfree", &sv.BFree, &sv);
        Off(Sv, "f_bavail", &sv.BAvail, &sv);
        Off(Sv, "f_files", &sv.Files, &sv);
        Off(Sv, "f_ffree", &sv.FFree, &sv);
        Off(Sv, "f_favail", &sv.FAvail, &sv);
        Off(Sv, "f_fsid", &sv.FsId, &sv);
        Off(Sv, "f_flag", &sv.Flag, &sv);
        Off(Sv, "f_namemax", &sv.NameMax, &sv);

        Const("FUSE_CAP_ASYNC_READ", FuseConstants.CapAsyncRead);
        Const("FUSE_CAP_SPLICE_READ", FuseConstants.CapSpliceRead);
        Const("FUSE_CAP_AUTO_INVAL_DATA", FuseConstants.CapAutoInvalData);
        Const("FUSE_CAP_ASYNC_DIO", FuseConstants.CapAsyncDio);
        Const("FUSE_CAP_WRITEBACK_CACHE", FuseConstants.CapWritebackCache);
        Const("FUSE_CAP_PARALLEL_DIROPS", FuseConstants.CapParallelDirops);
        Const("FUSE_SET_ATTR_MODE", FuseConstants.SetAttrMode);
        Const("FUSE_SET_ATTR_UID", FuseConstants.SetAttrUid);
        Const("FUSE_SET_ATTR_GID", FuseConstants.SetAttrGid);
        Const("FUSE_SET_ATTR_SIZE", FuseConstants.SetAttrSize);
        Const("FUSE_SET_ATTR_ATIME", FuseConstants.SetAttrATime);
        Const("FUSE_SET_ATTR_MTIME", FuseConstants.SetAttrMTime);
        Const("FUSE_SET_ATTR_ATIME_NOW", FuseConstants.SetAttrATimeNow);
        Const("FUSE_SET_ATTR_MTIME_NOW", FuseConstants.SetAttrMTimeNow);
        Const("FUSE_SET_ATTR_CTIME", FuseConstants.SetAttrCTime);
        foreach (FuseSetAttrFields field in Enum.GetValues<FuseSetAttrFields>())
        {
            if (field == FuseSetAttrFields.None) continue;
            string name = field switch
            {
                FuseSetAttrFields.ATimeNow => "ATIME_NOW",
                FuseSetAttrFields.MTimeNow => "MTIME_NOW",
                _ => field.ToString().ToUpperInvariant(),
            };
            Const("FUSE_SET_ATTR_" + name, (long)field);
        }
        Const("O_DIRECT", FuseConstants.ODirect);
        Const("MNT_DETACH", FuseConstants.MntDetach);
        Const("S_IFMT", FuseMode.TypeMask);
        Const("S_IFDIR", FuseMode.Directory);
        Const("S_IFREG", FuseMode.Regular);
        Const("EPERM", Errno.EPERM);
        Const("ENOENT", Errno.ENOENT);
        Const("EINTR", Errno.EINTR);
        Const("EIO", Errno.EIO);
        Const("ENXIO", Errno.ENXIO);
        Const("EBADF", Errno.EBADF);
        Const("ENOMEM", Errno.ENOMEM);
        Const("EACCES", Errno.EACCES);
        Const("EBUSY", Errno.EBUSY);
        Const("EEXIST", Errno.EEXIST);
        Const("ENODEV", Errno.ENODEV);
        Const("ENOTDIR", Errno.ENOTDIR);
        Const("EISDIR", Errno.EISDIR);
        Const("EINVAL", Errno.EINVAL);
        Const("EFBIG", Errno.EFBIG);
        Const("ENOSPC", Errno.ENOSPC);
        Const("ESPIPE", Errno.ESPIPE);
        Const("EROFS", Errno.EROFS);
        Const("ENAMETOOLONG", Errno.ENAMETOOLONG);
        Const("ENOSYS", Errno.ENOSYS);
        Const("EOPNOTSUPP", Errno.EOPNOTSUPP);
        Const("ECONNABORTED", Errno.ECONNABORTED);
        return f;
    }
}
