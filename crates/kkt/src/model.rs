//! The 54-FZ vocabulary: fiscal document kinds (форма ФД), settlement types (tag 1054), the
//! FN's warning flags (tags 1050–1053) and the catalogue of driver error codes that the
//! shipped rules and the fleet view name. Facts and sources: `docs/KKT.md` of the shared
//! documents (§2.6, §2.7).

use serde::Serialize;

/// Days of OFD backlog after which the fiscal drive stops signing documents (54-FZ art. 4.1;
/// the FN's "storage resource exhausted").
pub const OFD_BLOCK_DAYS: i64 = 30;
/// Longest shift the FN accepts, from the shift-open report.
pub const SHIFT_LIMIT_SECS: i64 = 24 * 3600;

/// Kind of a fiscal document, by its FFD code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 1: registration report (фискализация).
    Registration,
    /// 11: change of registration parameters (re-registration, e.g. a new FN).
    Reregistration,
    /// 2: shift-open report.
    OpenShift,
    /// 21: report of the current state of settlements (carries the OFD queue).
    CurrentState,
    /// 3: receipt.
    Receipt,
    /// 31: correction receipt.
    ReceiptCorrection,
    /// 4: strict-reporting form (БСО).
    Bso,
    /// 41: correction БСО.
    BsoCorrection,
    /// 5: shift-close report.
    CloseShift,
    /// 6: FN archive-close report (end of the drive's life).
    CloseFn,
    /// 7: the OFD's acknowledgement (квитанция).
    OperatorAck,
}

impl DocumentKind {
    /// The kind with FFD code `code`.
    pub fn from_code(code: i64) -> Option<DocumentKind> {
        Some(match code {
            1 => DocumentKind::Registration,
            11 => DocumentKind::Reregistration,
            2 => DocumentKind::OpenShift,
            21 => DocumentKind::CurrentState,
            3 => DocumentKind::Receipt,
            31 => DocumentKind::ReceiptCorrection,
            4 => DocumentKind::Bso,
            41 => DocumentKind::BsoCorrection,
            5 => DocumentKind::CloseShift,
            6 => DocumentKind::CloseFn,
            7 => DocumentKind::OperatorAck,
            _ => return None,
        })
    }

    /// The FFD code.
    pub fn code(self) -> i64 {
        match self {
            DocumentKind::Registration => 1,
            DocumentKind::Reregistration => 11,
            DocumentKind::OpenShift => 2,
            DocumentKind::CurrentState => 21,
            DocumentKind::Receipt => 3,
            DocumentKind::ReceiptCorrection => 31,
            DocumentKind::Bso => 4,
            DocumentKind::BsoCorrection => 41,
            DocumentKind::CloseShift => 5,
            DocumentKind::CloseFn => 6,
            DocumentKind::OperatorAck => 7,
        }
    }

    /// The `kind` label of `kkt_documents_total`.
    pub fn label(self) -> &'static str {
        match self {
            DocumentKind::Registration => "registration",
            DocumentKind::Reregistration => "reregistration",
            DocumentKind::OpenShift => "open_shift",
            DocumentKind::CurrentState => "current_state",
            DocumentKind::Receipt => "receipt",
            DocumentKind::ReceiptCorrection => "receipt_correction",
            DocumentKind::Bso => "bso",
            DocumentKind::BsoCorrection => "bso_correction",
            DocumentKind::CloseShift => "close_shift",
            DocumentKind::CloseFn => "close_fn",
            DocumentKind::OperatorAck => "operator_ack",
        }
    }

    /// Whether the kind settles money (receipts and БСО, corrections included).
    pub fn is_settlement(self) -> bool {
        matches!(
            self,
            DocumentKind::Receipt
                | DocumentKind::ReceiptCorrection
                | DocumentKind::Bso
                | DocumentKind::BsoCorrection
        )
    }
}

/// Settlement type, tag 1054 (признак расчёта).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// 1: приход.
    Sale,
    /// 2: возврат прихода.
    SaleReturn,
    /// 3: расход.
    Purchase,
    /// 4: возврат расхода.
    PurchaseReturn,
}

impl Operation {
    /// The operation with tag-1054 code `code`.
    pub fn from_code(code: i64) -> Option<Operation> {
        Some(match code {
            1 => Operation::Sale,
            2 => Operation::SaleReturn,
            3 => Operation::Purchase,
            4 => Operation::PurchaseReturn,
            _ => return None,
        })
    }

    /// The `operation` label of `kkt_receipts_amount_kopecks_total`.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Sale => "sale",
            Operation::SaleReturn => "sale_return",
            Operation::Purchase => "purchase",
            Operation::PurchaseReturn => "purchase_return",
        }
    }
}

/// The FN's warning flags, as the FFD reports carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FnFlags {
    /// Tag 1050: under 30 days of key validity left.
    pub resource_exhaustion_30d: bool,
    /// Tag 1051: under 3 days left, replace urgently.
    pub urgent_replacement_3d: bool,
    /// Tag 1052: the archive is at least 90 % full.
    pub memory_full_90pct: bool,
    /// Tag 1053: no OFD acknowledgement for over 2 days (5 for FFD 1.0).
    pub ofd_timeout: bool,
}

impl FnFlags {
    /// The flags with their `flag` label values.
    pub fn labelled(&self) -> [(&'static str, bool); 4] {
        [
            ("resource_exhaustion_30d", self.resource_exhaustion_30d),
            ("urgent_replacement_3d", self.urgent_replacement_3d),
            ("memory_full_90pct", self.memory_full_90pct),
            ("ofd_timeout", self.ofd_timeout),
        ]
    }
}

/// What a driver error is about: the `category` label of `kkt_driver_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The fiscal drive.
    Fn,
    /// Exchange with the OFD.
    Ofd,
    /// The shift (24 h limit, time between operations).
    Shift,
    /// The link between the driver and the register.
    Connection,
    /// The printer.
    Printer,
    /// Marking (Честный ЗНАК, FFD 1.2).
    Marking,
    /// Anything else.
    Other,
}

impl Category {
    /// The category named `s`.
    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "fn" | "fiscal_drive" => Category::Fn,
            "ofd" => Category::Ofd,
            "shift" => Category::Shift,
            "connection" | "network" => Category::Connection,
            "printer" => Category::Printer,
            "marking" => Category::Marking,
            "other" | "software" | "hardware" | "configuration" | "unknown" => Category::Other,
            _ => return None,
        })
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Category::Fn => "fn",
            Category::Ofd => "ofd",
            Category::Shift => "shift",
            Category::Connection => "connection",
            Category::Printer => "printer",
            Category::Marking => "marking",
            Category::Other => "other",
        }
    }

    /// Seed 000's `error_type` label of `kkt_errors_total` for this category.
    pub fn seed_error_type(self) -> &'static str {
        match self {
            Category::Fn => "fiscal_drive",
            Category::Ofd => "ofd",
            Category::Shift => "fiscal_drive",
            Category::Connection => "network",
            Category::Printer => "printer",
            Category::Marking => "ofd",
            Category::Other => "unknown",
        }
    }
}

/// A known driver error code: what it means and whether sales stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownCode {
    /// The code as drivers print it (`"137"`, `"0x14"`).
    pub code: &'static str,
    /// Its category.
    pub category: Category,
    /// Whether the register cannot sell until it is dealt with.
    pub blocking: bool,
    /// What it means, in the driver's words.
    pub meaning: &'static str,
    /// What to do about it.
    pub advice: &'static str,
}

const fn known(
    code: &'static str,
    category: Category,
    blocking: bool,
    meaning: &'static str,
    advice: &'static str,
) -> KnownCode {
    KnownCode {
        code,
        category,
        blocking,
        meaning,
        advice,
    }
}

const DELIVER: &str =
    "deliver the OFD backlog (network, OFD contract); the FN unblocks once the OFD acknowledges";
const REPLACE_FN: &str = "install a new FN and re-register the register with the FNS";
const CLOSE_SHIFT: &str = "close the shift (Z-report) and open a new one";
const CHECK_LINK: &str = "check the cable or network between the till and the register";
const CHECK_CLOCK: &str = "set the register's clock; check NTP on the till";

/// FN-interface codes (shared by all vendors, hex as Shtrih-M reports them) and ATOL
/// libfptr10 codes (decimal): `KKT.md` §2.7. ATOL's older v8 numbering (210–235) is not
/// listed, which is why the `driver` label is kept beside the code.
pub const KNOWN_CODES: &[KnownCode] = &[
    known(
        "0x02",
        Category::Fn,
        true,
        "Неверное состояние ФН (invalid FN state)",
        "check the FN's phase; re-register if it was replaced",
    ),
    known(
        "0x03",
        Category::Fn,
        true,
        "Отказ ФН (FN fault)",
        REPLACE_FN,
    ),
    known(
        "0x04",
        Category::Fn,
        true,
        "Отказ КС (crypto coprocessor fault)",
        REPLACE_FN,
    ),
    known(
        "0x05",
        Category::Fn,
        true,
        "Закончен срок эксплуатации ФН (FN expired)",
        REPLACE_FN,
    ),
    known(
        "0x06",
        Category::Fn,
        true,
        "Архив ФН переполнен (FN archive full)",
        REPLACE_FN,
    ),
    known(
        "0x07",
        Category::Shift,
        false,
        "Неверные дата/время",
        CHECK_CLOCK,
    ),
    known(
        "0x11",
        Category::Ofd,
        false,
        "Нет транспортного соединения (no OFD transport)",
        "check the register's internet access and OFD address",
    ),
    known(
        "0x12",
        Category::Fn,
        true,
        "Исчерпан ресурс КС (crypto resource exhausted)",
        REPLACE_FN,
    ),
    known(
        "0x14",
        Category::Ofd,
        true,
        "Исчерпан ресурс хранения (30-day OFD backlog)",
        DELIVER,
    ),
    known(
        "0x15",
        Category::Ofd,
        true,
        "Исчерпан ресурс ожидания передачи сообщения",
        DELIVER,
    ),
    known(
        "0x16",
        Category::Shift,
        true,
        "Продолжительность смены более 24 часов",
        CLOSE_SHIFT,
    ),
    known(
        "0x17",
        Category::Shift,
        true,
        "Неверная разница во времени между 2 операциями",
        CHECK_CLOCK,
    ),
    known(
        "0x20",
        Category::Ofd,
        false,
        "Сообщение от ОФД не может быть принято",
        "check the OFD settings (INN, address) of the register",
    ),
    known(
        "2",
        Category::Connection,
        false,
        "Нет связи с ККТ (no connection)",
        CHECK_LINK,
    ),
    known(
        "241",
        Category::Connection,
        false,
        "Потеряна связь с ККТ (connection lost)",
        CHECK_LINK,
    ),
    known(
        "115",
        Category::Fn,
        false,
        "Ошибка обмена с ФН (FN I/O error)",
        "reseat the FN; replace it if the error repeats",
    ),
    known(
        "117",
        Category::Fn,
        true,
        "Неверное состояние ФН (invalid FN state)",
        "check the FN's phase; re-register if it was replaced",
    ),
    known(
        "118",
        Category::Fn,
        true,
        "Неисправимая ошибка ФН (FN fault)",
        REPLACE_FN,
    ),
    known(
        "119",
        Category::Fn,
        true,
        "Ошибка КС ФН (crypto coprocessor error)",
        REPLACE_FN,
    ),
    known(
        "120",
        Category::Fn,
        true,
        "Закончен срок эксплуатации ФН (FN expired)",
        REPLACE_FN,
    ),
    known(
        "121",
        Category::Fn,
        true,
        "Архив ФН переполнен (FN archive full)",
        REPLACE_FN,
    ),
    known(
        "135",
        Category::Ofd,
        false,
        "Нет транспортного соединения ФН",
        "check the register's internet access and OFD address",
    ),
    known(
        "136",
        Category::Fn,
        true,
        "Исчерпан ресурс КС ФН (crypto resource exhausted)",
        REPLACE_FN,
    ),
    known(
        "137",
        Category::Ofd,
        true,
        "Исчерпан ресурс хранения ФН (30-day OFD backlog)",
        DELIVER,
    ),
    known(
        "138",
        Category::Ofd,
        false,
        "Некорректное сообщение от ОФД",
        "check the OFD settings (INN, address) of the register",
    ),
    known(
        "139",
        Category::Ofd,
        false,
        "Есть неотправленные в ОФД документы",
        DELIVER,
    ),
    known(
        "140",
        Category::Ofd,
        true,
        "Исчерпан ресурс ожидания передачи сообщения",
        DELIVER,
    ),
    known(
        "141",
        Category::Shift,
        true,
        "Продолжительность смены более 24 часов",
        CLOSE_SHIFT,
    ),
    known(
        "142",
        Category::Shift,
        true,
        "Неверная разница во времени между операциями",
        CHECK_CLOCK,
    ),
    known(
        "166",
        Category::Fn,
        true,
        "ФН не найден (FN missing)",
        "install the FN; check its connector",
    ),
    known(
        "224",
        Category::Fn,
        true,
        "Архив ФН закрыт (FN archive closed)",
        REPLACE_FN,
    ),
    known(
        "225",
        Category::Fn,
        true,
        "ККТ не зарегистрирована (not registered)",
        "register the KKT with the FNS",
    ),
    known(
        "411",
        Category::Marking,
        false,
        "Ошибка обмена с ОФД (marking)",
        "check the OFD and Честный ЗНАК connectivity",
    ),
    known(
        "417",
        Category::Marking,
        false,
        "Есть неотправленные уведомления (marking notices)",
        "deliver the marking notices; check the OFD connectivity",
    ),
    known(
        "418",
        Category::Marking,
        false,
        "Требуется обновление ключей проверки (ОКП)",
        "run the FN key update (ОКП)",
    ),
    known(
        "419",
        Category::Marking,
        false,
        "Ошибка сервиса обновления ключей",
        "retry the FN key update later",
    ),
    known(
        "421",
        Category::Marking,
        false,
        "Истекло время проверки кода маркировки",
        "check the OFD and Честный ЗНАК connectivity",
    ),
];

/// What the catalogue knows about `code`; hex codes match in any case and with or without
/// leading zeros (`0x5`, `0X05`).
pub fn lookup(code: &str) -> Option<&'static KnownCode> {
    let code = code.trim();
    if let Some(hex) = code.strip_prefix("0x").or_else(|| code.strip_prefix("0X")) {
        let n = u32::from_str_radix(hex, 16).ok()?;
        let canonical = format!("0x{n:02x}");
        return KNOWN_CODES.iter().find(|k| k.code == canonical);
    }
    KNOWN_CODES.iter().find(|k| k.code == code)
}

/// The code as the catalogue spells it (`0X5` → `0x05`), or `code` trimmed when unknown.
pub fn canonical_code(code: &str) -> String {
    lookup(code).map_or_else(|| code.trim().to_owned(), |k| k.code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_hex_is_normalised() {
        for k in KNOWN_CODES {
            assert_eq!(lookup(k.code).map(|x| x.code), Some(k.code));
        }
        assert_eq!(lookup("0X5").map(|k| k.code), Some("0x05"));
        assert_eq!(canonical_code(" 0x14 "), "0x14");
        assert_eq!(canonical_code("9999"), "9999");
        assert!(lookup("0xzz").is_none());
        let blocking: Vec<_> = ["137", "140", "141", "120", "121", "0x14", "0x16"]
            .iter()
            .map(|c| lookup(c).is_some_and(|k| k.blocking))
            .collect();
        assert!(blocking.iter().all(|b| *b));
    }

    #[test]
    fn document_kinds_round_trip() {
        for code in [1, 11, 2, 21, 3, 31, 4, 41, 5, 6, 7] {
            assert_eq!(
                DocumentKind::from_code(code).map(DocumentKind::code),
                Some(code)
            );
        }
        assert_eq!(DocumentKind::from_code(8), None);
        assert_eq!(
            Operation::from_code(4).map(Operation::label),
            Some("purchase_return")
        );
    }
}
