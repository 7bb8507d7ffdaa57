using QedFuse.Block;
using QedFuse.Cli.Mount;
using QedFuse.Cli.Verbs;

namespace QedFuse.Cli;

/// <summary>
/// The way out each verb offers when its image cannot be opened as asked (in use elsewhere, on a
/// read-only file system). One table, so every verb words the same trouble the same way: a new
/// verb adds its lines here.
/// </summary>
internal static class Remedies
{
    private const string InspectAnyway = "to inspect it anyway, add -U (what you see may be stale)";

    /// <summary>The one line for <paramref name="e"/> as the verb whose options are <paramref name="verb"/> should say it, or null for the plain message.</summary>
    public static string? Explain(object? verb, Exception e) => e switch
    {
        ImageInUseException inUse => $"{inUse.Describe(HolderDetail(inUse.Holder))}; {InUse(verb)}",
        ReadOnlyFileSystemException ro => $"{ro.Message}; {ReadOnlyFileSystem(verb)}",
        _ => null,
    };

    private static string InUse(object? verb) => verb switch
    {
        MountOptions => "to look at it read-only meanwhile: -o ro,force_share (what you see may be stale)",
        InfoOptions or MapOptions => InspectAnyway,
        CheckOptions { Repair: null } => InspectAnyway,
        CheckOptions => "stop the program using it (qedfuse unmount MOUNTPOINT, or shut the VM down) before repairing",
        _ => "stop the program using it first (qedfuse unmount MOUNTPOINT, or shut the VM down)",
    };

    private static string ReadOnlyFileSystem(object? verb) => verb switch
    {
        MountOptions => "mount it with -o ro",
        CheckOptions => "check it without -r, or copy it to a writable file system to repair it",
        _ => "copy it to a writable file system to change it",
    };

    /// <summary>Where a qedfuse holder has the image mounted, when its record is ours to read.</summary>
    private static string? HolderDetail(LockHolder? holder) =>
        holder is { IsQedfuse: true } && MountTable.MountPointOf(holder.Pid) is { } mountPoint ? $"mounted at {mountPoint}" : null;
}
