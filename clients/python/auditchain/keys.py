"""ed25519 keys (PyNaCl) in the node's key-file format: JSON {"public_key": hex, "secret_key": hex}."""
import json
import os

from nacl.signing import SigningKey


class Key:
    """An ed25519 signing key (RFC 8032). `public_key` is the 32-byte key as hex."""

    def __init__(self, seed: bytes):
        if len(seed) != 32:
            raise ValueError("an ed25519 secret key is 32 bytes")
        self._sk = SigningKey(seed)

    @classmethod
    def generate(cls) -> "Key":
        """A new random key."""
        return cls(bytes(SigningKey.generate()))

    @classmethod
    def load(cls, path: str) -> "Key":
        """Reads a key file written by `auditchain keys generate`."""
        with open(path) as f:
            d = json.load(f)
        k = cls(bytes.fromhex(d["secret_key"]))
        if "public_key" in d and d["public_key"] != k.public_key:
            raise ValueError(f"{path}: public_key does not match secret_key")
        return k

    def save(self, path: str) -> None:
        """Writes the key file with mode 0600 (refuses to overwrite)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"public_key": self.public_key, "secret_key": bytes(self._sk).hex()}, f, indent=2)

    @property
    def public_key(self) -> str:
        """The 32-byte public key, hex."""
        return self._sk.verify_key.encode().hex()

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of `message`."""
        return self._sk.sign(message).signature
