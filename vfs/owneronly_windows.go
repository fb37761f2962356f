package vfs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ownerOnly reads the DACL of name and accepts it when every entry that
// allows access names the file's owner, LocalSystem or the built-in
// Administrators (the rule OpenSSH for Windows applies to private keys).
// Entries that only pass on inheritance are skipped; deny entries are not
// weighed, so an allow entry for another account is refused even when a
// deny entry cancels it. A missing (NULL) DACL grants everyone access.
func (OSFS) ownerOnly(name string) (why, fix string) {
	sd, err := windows.GetNamedSecurityInfo(name, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Sprintf("an access-control list that could not be read (%v)", err), fmt.Sprintf("icacls %q", name)
	}
	grant := func(account string) string {
		return fmt.Sprintf(`icacls %q /inheritance:r /remove %q /grant:r "%%USERNAME%%:F"`, name, account)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Sprintf("no readable owner (%v)", err), grant("Everyone")
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		return "no access-control list, which lets everyone in", grant("Everyone")
	}
	system, err1 := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	admins, err2 := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err1 != nil || err2 != nil {
		return "an access-control list that could not be checked", grant("Everyone")
	}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return fmt.Sprintf("an access-control list that could not be read (%v)", err), grant("Everyone")
		}
		if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue
		}
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
		case windows.ACCESS_DENIED_ACE_TYPE:
			continue
		default: // object and callback entries that may allow access
			return fmt.Sprintf("an access-control entry of type %d that may let others in", ace.Header.AceType), grant("Everyone")
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if sid.Equals(owner) || sid.Equals(system) || sid.Equals(admins) {
			continue
		}
		account := sid.String()
		if a, d, _, err := sid.LookupAccount(""); err == nil {
			account = a
			if d != "" {
				account = d + `\` + a
			}
		}
		return fmt.Sprintf("an access-control entry that lets %s in", account), grant(account)
	}
	return "", ""
}
