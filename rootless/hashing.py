"""sha256 from CPython's own C module (about 0.1 ms to import) rather than hashlib's OpenSSL one
(5 ms and more to load): the seccomp cache on every create with a profile, `rlx run`'s check of
a config blob and keep-id's map key need nothing more. A leaf every layer may use."""


def sha256():
    """The sha256 constructor."""
    try:
        from _sha2 import sha256 as constructor  # Python 3.12 and later
    except ImportError:
        try:
            from _sha256 import sha256 as constructor  # Python 3.11
        except ImportError:
            from hashlib import sha256 as constructor
    return constructor
