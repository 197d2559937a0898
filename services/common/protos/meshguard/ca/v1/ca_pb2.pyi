from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CreateCertificateRequest(_message.Message):
    __slots__ = ("csr", "ttl_seconds")
    CSR_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    csr: str
    ttl_seconds: int
    def __init__(self, csr: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateCertificateResponse(_message.Message):
    __slots__ = ("cert_chain", "spiffe_id", "expires_at")
    CERT_CHAIN_FIELD_NUMBER: _ClassVar[int]
    SPIFFE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    cert_chain: _containers.RepeatedScalarFieldContainer[str]
    spiffe_id: str
    expires_at: int
    def __init__(self, cert_chain: _Optional[_Iterable[str]] = ..., spiffe_id: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class GetRootBundleRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRootBundleResponse(_message.Message):
    __slots__ = ("root_bundle",)
    ROOT_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    root_bundle: str
    def __init__(self, root_bundle: _Optional[str] = ...) -> None: ...
