"""A local Alibaba Cloud OSS: moto's S3 server behind a small OSS-compatibility WSGI layer.

The unmodified ``oss2`` SDK talks to it exactly as it talks to OSS (path-style URLs, which oss2 picks
by itself for an IP or ``localhost`` endpoint). Storage, listing, paging, multipart and ranges are
moto's S3 implementation; this package only bridges what OSS does differently on the wire:

* ``auth`` (with ``auth_v2``, ``auth_v4`` and ``signing``): OSS signatures V1, V2 and V4, in the
  Authorization header or the query string, verified with the keys of a
  :class:`~localcloud.keyring.Keyring` and then replaced by a marker moto accepts as "signed" (moto
  applies S3 anonymous-access ACLs to unsigned requests).
* ``translation``: ``x-oss-*`` headers renamed to S3's ``x-amz-*`` on the way in and back on the way
  out; the query moto gets.
* ``xml_bodies``: moto's S3 XML answers reshaped into OSS's, and OSS's <Error>.
* ``compat``: the WSGI layer itself, with the OSS-only behaviour moto does not have
  (``x-oss-forbid-overwrite``, ``x-oss-object-type``, the 100 KB minimum part size...).
* ``multipart``: ListMultipartUploads and ListParts answered from moto's state in OSS's shapes; the
  Complete body (``x-oss-complete-all``) and the completed object's CRC.
* ``append``: AppendObject, which S3 does not have.
* ``crc64``: ``x-oss-hash-crc64ecma``, computed as bodies stream in and kept with the object.
* ``names``: OSS's rules for bucket names, object names and tags.
* ``notifications``: object-created and object-removed events, delivered to listeners as FC
  OSS-trigger records.
* ``faults``: errors, latency and lost answers, by chance (rate switches) or for the next N matching
  requests; ``admin``: the switches over HTTP, at ``/__localcloud/faults``.
* ``storage``: objects in files, not in memory: multipart uploads joined part file by part file,
  GETs and copies streamed from the object's file; and the records ``--data-dir`` keeps.
* ``server``: :class:`LocalOss`, which serves it all.

State lives in moto's process-global S3 backend: two ``LocalOss`` in one process share buckets, and
anything that resets moto (``mock_aws``) empties them. Path-style URLs only. PostObject and other
OSS-only sub-resources (symlink, creating live channels...) answer 501 NotImplemented.
``make conformance`` runs oss2's own test suite against it (``tests/conformance/``).
"""

from localcloud.oss.server import LocalOss

__all__ = ["LocalOss"]
