"""The generative retriever: a fine-tuned model that writes identifiers, decoding constrained by the trie.

Modules: ``spec`` (the folder format), ``models`` (base models), ``constraint``
(the trie ``LogitsProcessor``), ``generator`` (query -> candidates),
``examples`` and ``training`` (Rationale-Guided fine-tuning). Importing this
package loads no torch; the modules that need it import it themselves.
"""
