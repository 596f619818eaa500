"""What the daemon and the language server both need: the wire protocol, runtime paths and the
address file, the privacy guard, the language table. Imports nothing of nearcode's but itself."""
