"""The identifier trie: identifier <-> image ids, and which token may follow a prefix.

Pure marisa-trie and numpy (no torch): the engine side rebuilds a trie from the
identifiers it scrolls; the generator (``ssi_plugin.generation``) decodes against it.
"""

from ssi_plugin.trie.identifier_index import IdentifierIndex
from ssi_plugin.trie.store import Entry, IdentifierTrie, TrieManifest
from ssi_plugin.trie.token_trie import TokenBatch, TokenTrie, encode_tokens
from ssi_plugin.trie.view import TrieView

__all__ = ["Entry", "IdentifierIndex", "IdentifierTrie", "TokenBatch", "TokenTrie", "TrieManifest", "TrieView", "encode_tokens"]
