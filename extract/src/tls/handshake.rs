//! Handshake message bodies (RFC 8446 4.1, RFC 5246 7.4): ClientHello, ServerHello and the
//! TLS <= 1.2 Certificate list. Parsers take the body after the 4-byte handshake header.

/// Handshake message types Weir reads.
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const CERTIFICATE: u8 = 11;
pub const SERVER_HELLO_DONE: u8 = 14;

/// Extension types (IANA "TLS ExtensionType Values").
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Certificates read from one Certificate message; the server's own is first, and detection
/// and EVE only look at the first few.
pub const MAX_CERTIFICATES: usize = 16;

/// RFC 8701 GREASE values (0x0a0a, 0x1a1a, ... 0xfafa), which fingerprints leave out.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub cipher_suites: Vec<u16>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    /// The first host_name of the server_name extension, as sent.
    pub sni: Option<Vec<u8>>,
    pub supported_groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub alpn: Vec<Vec<u8>>,
    pub supported_versions: Vec<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub cipher_suite: u16,
    pub extensions: Vec<u16>,
    /// The supported_versions extension's selected version (TLS 1.3).
    pub selected_version: Option<u16>,
    pub alpn: Vec<Vec<u8>>,
}

impl ServerHello {
    /// The negotiated version: supported_versions when present, else the legacy field.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.bytes(3)?;
        Some((usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.bytes(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn u16_list(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

fn alpn_list(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16()?);
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.vec8()?.to_vec());
    }
    Some(out)
}

/// Walks an extensions block, handing each (type, data) to `each`.
fn extensions(r: &mut Reader<'_>, mut each: impl FnMut(u16, &[u8]) -> Option<()>) -> Option<()> {
    if r.is_empty() {
        return Some(()); // extensions are optional before TLS 1.3
    }
    let mut block = Reader(r.vec16()?);
    while !block.is_empty() {
        let ext_type = block.u16()?;
        let data = block.vec16()?;
        each(ext_type, data)?;
    }
    Some(())
}

/// Parses a ClientHello body; `None` when it does not fit the format.
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(body);
    let mut hello = ClientHello { legacy_version: r.u16()?, ..ClientHello::default() };
    r.bytes(32)?; // random
    hello.session_id = r.vec8()?.to_vec();
    hello.cipher_suites = u16_list(r.vec16()?);
    r.vec8()?; // compression methods
    extensions(&mut r, |ext_type, data| {
        hello.extensions.push(ext_type);
        match ext_type {
            EXT_SERVER_NAME => {
                let mut list = Reader(Reader(data).vec16()?);
                while !list.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && hello.sni.is_none() {
                        hello.sni = Some(name.to_vec());
                    }
                }
            }
            EXT_SUPPORTED_GROUPS => hello.supported_groups = u16_list(Reader(data).vec16()?),
            EXT_EC_POINT_FORMATS => hello.ec_point_formats = Reader(data).vec8()?.to_vec(),
            EXT_SIGNATURE_ALGORITHMS => hello.signature_algorithms = u16_list(Reader(data).vec16()?),
            EXT_ALPN => hello.alpn = alpn_list(data)?,
            EXT_SUPPORTED_VERSIONS => hello.supported_versions = u16_list(Reader(data).vec8()?),
            _ => {}
        }
        Some(())
    })?;
    Some(hello)
}

/// Parses a ServerHello body. TLS 1.3 drafts before 22 used a shorter layout (no session id nor
/// compression method), announced by their version field (0x7fNN).
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader(body);
    let mut hello = ServerHello { legacy_version: r.u16()?, ..ServerHello::default() };
    r.bytes(32)?; // random
    let early_draft = hello.legacy_version >> 8 == 0x7f && (hello.legacy_version & 0xff) < 22;
    if !early_draft {
        hello.session_id = r.vec8()?.to_vec();
    }
    hello.cipher_suite = r.u16()?;
    if !early_draft {
        r.u8()?; // compression method
    }
    extensions(&mut r, |ext_type, data| {
        hello.extensions.push(ext_type);
        match ext_type {
            EXT_SUPPORTED_VERSIONS => hello.selected_version = Some(Reader(data).u16()?),
            EXT_ALPN => hello.alpn = alpn_list(data)?,
            _ => {}
        }
        Some(())
    })?;
    Some(hello)
}

/// The DER certificates of a TLS <= 1.2 Certificate message, at most [`MAX_CERTIFICATES`].
pub fn parse_certificate_list(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut r = Reader(body);
    let len = r.u24()?;
    let mut list = Reader(r.bytes(len)?);
    let mut certs = Vec::new();
    while !list.is_empty() && certs.len() < MAX_CERTIFICATES {
        let n = list.u24()?;
        certs.push(list.bytes(n)?);
    }
    Some(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn client_hello_fields() {
        let mut body = vec![
            0x03, 0x03, // legacy_version TLS 1.2
        ];
        body.extend_from_slice(&[0x11; 32]); // random
        body.extend_from_slice(&[0x02, 0xaa, 0xbb]); // session_id (2 bytes)
        body.extend_from_slice(&[0x00, 0x06, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2f]); // GREASE, 0x1301, 0xc02f
        body.extend_from_slice(&[0x01, 0x00]); // compression: null
        let exts: &[u8] = &[
            0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'o', // SNI example.o
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups: x25519
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
            0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms: ecdsa_secp256r1_sha256
            0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, b'h', b'2', 0x08, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1', // ALPN
            0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03, // supported_versions: 1.3, 1.2
        ];
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let hello = parse_client_hello(&body).unwrap();
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.session_id, [0xaa, 0xbb]);
        assert_eq!(hello.cipher_suites, [0x0a0a, 0x1301, 0xc02f]);
        assert_eq!(hello.extensions, [0, 10, 11, 13, 16, 43]);
        assert_eq!(hello.sni.as_deref(), Some(&b"example.o"[..]));
        assert_eq!(hello.supported_groups, [0x1d]);
        assert_eq!(hello.ec_point_formats, [0]);
        assert_eq!(hello.signature_algorithms, [0x0403]);
        assert_eq!(hello.alpn, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(hello.supported_versions, [0x0304, 0x0303]);
        // Every cut is rejected, none panics.
        for cut in 0..body.len() {
            assert!(parse_client_hello(&body[..cut]).is_none() || cut == 2 + 32 + 3 + 8 + 2, "cut {cut}");
        }
    }
}
