namespace QedFuse.Fuse.Tests;

public class MountOptionsTests
{
    [Fact]
    public void Defaults_ask_for_default_permissions_and_auto_unmount()
    {
        Assert.Equal("default_permissions,auto_unmount", new FuseMountOptions().BuildOptionString());
    }

    [Fact]
    public void All_options_are_rendered_and_commas_in_values_escaped()
    {
        var o = new FuseMountOptions
        {
            FsName = @"a,b\c", Subtype = "qedfuse", ReadOnly = true, AllowOther = true,
            DefaultPermissions = false, AutoUnmount = false, MaxRead = 131072, ExtraOptions = ["noatime"],
        };
        Assert.Equal(@"fsname=a\,b\\c,subtype=qedfuse,ro,allow_other,max_read=131072,noatime", o.BuildOptionString());
    }
}
