"""Suite-wide: this folder is on sys.path (pytest's rootdir-prepend import mode for conftest
folders), so small shared helpers such as ``config_edit`` import from any test folder."""
