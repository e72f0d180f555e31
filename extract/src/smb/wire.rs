//! SMB2/3 wire formats ([MS-SMB2] 2.2): the header, the command bodies Weir reads, and the names
//! EVE gives codes. Every reader takes a slice and returns `None` when it is too short.

use std::fmt::Write as _;

/// `0xFE 'S' 'M' 'B'`: an SMB2/3 message.
pub const SMB2_MAGIC: &[u8; 4] = b"\xfeSMB";
/// `0xFF 'S' 'M' 'B'`: an SMB1 message.
pub const SMB1_MAGIC: &[u8; 4] = b"\xffSMB";
/// `0xFD 'S' 'M' 'B'`: an SMB3 transform header; what follows is encrypted.
pub const TRANSFORM_MAGIC: &[u8; 4] = b"\xfdSMB";
/// `0xFC 'S' 'M' 'B'`: an SMB3.1.1 compression transform header.
pub const COMPRESSION_MAGIC: &[u8; 4] = b"\xfcSMB";

/// The SMB2 header is 64 bytes ([MS-SMB2] 2.2.1).
pub const HEADER_LEN: usize = 64;

pub const FLAG_RESPONSE: u32 = 0x1;
pub const FLAG_ASYNC: u32 = 0x2;
pub const FLAG_RELATED: u32 = 0x4;

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_PENDING: u32 = 0x0000_0103;
pub const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;

/// An SMB2 command code. Open: any value is representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Command(pub u16);

impl Command {
    pub const NEGOTIATE: Command = Command(0);
    pub const SESSION_SETUP: Command = Command(1);
    pub const LOGOFF: Command = Command(2);
    pub const TREE_CONNECT: Command = Command(3);
    pub const TREE_DISCONNECT: Command = Command(4);
    pub const CREATE: Command = Command(5);
    pub const CLOSE: Command = Command(6);
    pub const FLUSH: Command = Command(7);
    pub const READ: Command = Command(8);
    pub const WRITE: Command = Command(9);
    pub const LOCK: Command = Command(10);
    pub const IOCTL: Command = Command(11);
    pub const CANCEL: Command = Command(12);
    pub const ECHO: Command = Command(13);
    pub const QUERY_DIRECTORY: Command = Command(14);
    pub const CHANGE_NOTIFY: Command = Command(15);
    pub const QUERY_INFO: Command = Command(16);
    pub const SET_INFO: Command = Command(17);
    pub const OPLOCK_BREAK: Command = Command(18);

    /// Suricata's EVE spelling (`SMB2_COMMAND_CREATE`).
    pub fn eve(self) -> String {
        let name = match self.0 {
            0 => "NEGOTIATE_PROTOCOL",
            1 => "SESSION_SETUP",
            2 => "SESSION_LOGOFF",
            3 => "TREE_CONNECT",
            4 => "TREE_DISCONNECT",
            5 => "CREATE",
            6 => "CLOSE",
            7 => "FLUSH",
            8 => "READ",
            9 => "WRITE",
            10 => "LOCK",
            11 => "IOCTL",
            12 => "CANCEL",
            13 => "KEEPALIVE",
            14 => "FIND",
            15 => "CHANGE_NOTIFY",
            16 => "GET_INFO",
            17 => "SET_INFO",
            18 => "OPLOCK_BREAK",
            n => return format!("SMB2_COMMAND_UNKNOWN_{n}"),
        };
        format!("SMB2_COMMAND_{name}")
    }
}

/// The fields of the SMB2 header Weir uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub credit_charge: u16,
    /// NT status in responses.
    pub status: u32,
    pub command: Command,
    pub flags: u32,
    /// Offset of the next message of a compound, from this header's start; 0 for the last.
    pub next_command: u32,
    pub message_id: u64,
    /// `None` in async messages, which carry an AsyncId instead.
    pub tree_id: Option<u32>,
    pub session_id: u64,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub fn file_id_at(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}

/// Parses an SMB2 header at the start of `msg`.
pub fn parse_header(msg: &[u8]) -> Option<Header> {
    if msg.len() < HEADER_LEN || msg.get(..4)? != SMB2_MAGIC || u16_at(msg, 4)? != 64 {
        return None;
    }
    let flags = u32_at(msg, 16)?;
    Some(Header {
        credit_charge: u16_at(msg, 6)?,
        status: u32_at(msg, 8)?,
        command: Command(u16_at(msg, 12)?),
        flags,
        next_command: u32_at(msg, 20)?,
        message_id: u64_at(msg, 24)?,
        tree_id: if flags & FLAG_ASYNC != 0 {
            None
        } else {
            Some(u32_at(msg, 36)?)
        },
        session_id: u64_at(msg, 40)?,
    })
}

/// UTF-16LE text as a string, unpaired surrogates replaced.
pub fn utf16(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A dialect as Suricata writes it (`"3.11"`).
pub fn dialect_eve(d: u16) -> String {
    match d {
        0x0202 => "2.02".into(),
        0x0210 => "2.10".into(),
        0x0222 => "2.22".into(),
        0x0224 => "2.24".into(),
        0x02ff => "2.??".into(),
        0x0300 => "3.00".into(),
        0x0302 => "3.02".into(),
        0x0310 => "3.10".into(),
        0x0311 => "3.11".into(),
        other => format!("0x{other:04x}"),
    }
}

/// An NT status name as Suricata writes it; `None` for codes this table lacks (EVE then has
/// only `status_code`).
pub fn status_name(status: u32) -> Option<&'static str> {
    Some(match status {
        0x0000_0000 => "STATUS_SUCCESS",
        0x0000_0103 => "STATUS_PENDING",
        0x0000_010b => "STATUS_NOTIFY_CLEANUP",
        0x0000_010c => "STATUS_NOTIFY_ENUM_DIR",
        0x8000_0005 => "STATUS_BUFFER_OVERFLOW",
        0x8000_0006 => "STATUS_NO_MORE_FILES",
        0xc000_000d => "STATUS_INVALID_PARAMETER",
        0xc000_000f => "STATUS_NO_SUCH_FILE",
        0xc000_0011 => "STATUS_END_OF_FILE",
        0xc000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xc000_0022 => "STATUS_ACCESS_DENIED",
        0xc000_0023 => "STATUS_BUFFER_TOO_SMALL",
        0xc000_0033 => "STATUS_OBJECT_NAME_INVALID",
        0xc000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xc000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xc000_003a => "STATUS_OBJECT_PATH_NOT_FOUND",
        0xc000_0043 => "STATUS_SHARING_VIOLATION",
        0xc000_0061 => "STATUS_PRIVILEGE_NOT_HELD",
        0xc000_006d => "STATUS_LOGON_FAILURE",
        0xc000_00ba => "STATUS_FILE_IS_A_DIRECTORY",
        0xc000_00bb => "STATUS_NOT_SUPPORTED",
        0xc000_00cc => "STATUS_BAD_NETWORK_NAME",
        0xc000_0101 => "STATUS_DIRECTORY_NOT_EMPTY",
        0xc000_0120 => "STATUS_CANCELLED",
        0xc000_0128 => "STATUS_FILE_CLOSED",
        0xc000_0225 => "STATUS_NOT_FOUND",
        _ => return None,
    })
}

/// CreateDisposition ([MS-SMB2] 2.2.13) as Suricata writes it.
pub fn disposition_eve(d: u32) -> String {
    match d {
        0 => "FILE_SUPERSEDE".into(),
        1 => "FILE_OPEN".into(),
        2 => "FILE_CREATE".into(),
        3 => "FILE_OPEN_IF".into(),
        4 => "FILE_OVERWRITE".into(),
        5 => "FILE_OVERWRITE_IF".into(),
        other => format!("UNKNOWN_{other}"),
    }
}

/// A FileId as the GUID-style text Suricata logs as `fuid`.
pub fn fuid(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    let _ = write!(
        s,
        "{:08x}-{:04x}-{:04x}-",
        u32::from_le_bytes([id[0], id[1], id[2], id[3]]),
        u16::from_le_bytes([id[4], id[5]]),
        u16::from_le_bytes([id[6], id[7]])
    );
    for (i, b) in id[8..].iter().enumerate() {
        if i == 2 {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuid_matches_wiresharks_guid_text() {
        let id = [0x35, 0x01, 0, 0, 0, 0, 0, 0, 0x69, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(fuid(&id), "00000135-0000-0000-6900-000000000000");
    }

    #[test]
    fn header_fields() {
        // A WRITE request: magic, size 64, credit charge 1, status 0, command 9, credits 1,
        // flags 0, next 0, message id 563, reserved, tree id 5, session id 0x10.
        let mut h = Vec::new();
        h.extend_from_slice(b"\xfeSMB");
        h.extend_from_slice(&64u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&9u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&563u64.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&5u32.to_le_bytes());
        h.extend_from_slice(&0x10u64.to_le_bytes());
        h.extend_from_slice(&[0u8; 16]);
        let hdr = parse_header(&h).expect("header");
        assert_eq!(hdr.command, Command::WRITE);
        assert_eq!(
            (hdr.message_id, hdr.tree_id, hdr.session_id),
            (563, Some(5), 0x10)
        );
        assert!(!hdr.is_response());
        assert_eq!(parse_header(&h[..63]), None);
        assert_eq!(Command(9).eve(), "SMB2_COMMAND_WRITE");
        assert_eq!(Command(99).eve(), "SMB2_COMMAND_UNKNOWN_99");
    }
}
