"""The Installer ISO: checksum and user-data, static inspection (El Torito, EFI, USB), a QEMU boot test."""
