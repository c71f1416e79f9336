//! The SecLang vocabulary the engine knows: operators, transformations,
//! actions and variable collections, each looked up without regard to case
//! (one CRS rule writes `t:base64decode`). A name outside these lists is a
//! load error naming the rule's file and line.
//!
//! Each name gets its own unit file (operator, transformation, action) with
//! its test as the engine grows; these tables are the registry the loader
//! checks against meanwhile.

/// Operators (`@name`).
pub const OPERATORS: &[&str] = &[
    "beginsWith",
    "contains",
    "containsWord",
    "detectSQLi",
    "detectXSS",
    "endsWith",
    "eq",
    "ge",
    "gt",
    "inspectFile",
    "ipMatch",
    "ipMatchF",
    "ipMatchFromFile",
    "le",
    "lt",
    "noMatch",
    "pm",
    "pmf",
    "pmFromFile",
    "rbl",
    "rsub",
    "rx",
    "rxGlobal",
    "streq",
    "strmatch",
    "unconditionalMatch",
    "validateByteRange",
    "validateDTD",
    "validateSchema",
    "validateUrlEncoding",
    "validateUtf8Encoding",
    "verifyCC",
    "verifyCPF",
    "verifySSN",
    "within",
    "geoLookup",
    "gsbLookup",
    "fuzzyHash",
];

/// Transformations (`t:name`).
pub const TRANSFORMATIONS: &[&str] = &[
    "base64Decode",
    "base64DecodeExt",
    "base64Encode",
    "cmdLine",
    "compressWhitespace",
    "cssDecode",
    "escapeSeqDecode",
    "hexDecode",
    "hexEncode",
    "htmlEntityDecode",
    "jsDecode",
    "length",
    "lowercase",
    "md5",
    "none",
    "normalisePath",
    "normalisePathWin",
    "normalizePath",
    "normalizePathWin",
    "parityEven7bit",
    "parityOdd7bit",
    "parityZero7bit",
    "removeComments",
    "removeCommentsChar",
    "removeNulls",
    "removeWhitespace",
    "replaceComments",
    "replaceNulls",
    "sha1",
    "sqlHexDecode",
    "trim",
    "trimLeft",
    "trimRight",
    "uppercase",
    "urlDecode",
    "urlDecodeUni",
    "urlEncode",
    "utf8toUnicode",
];

/// Actions. Taxonomy as ModSecurity's: disruptive (deny, block, pass,
/// allow, drop, redirect), flow (chain, skip, skipAfter), metadata (id,
/// phase, msg, tag, severity, ver, rev, maturity, accuracy), data (status,
/// t, capture, logdata) and the rest (setvar, ctl, log, ...).
pub const ACTIONS: &[&str] = &[
    "accuracy",
    "allow",
    "append",
    "auditlog",
    "block",
    "capture",
    "chain",
    "ctl",
    "deny",
    "deprecatevar",
    "drop",
    "exec",
    "expirevar",
    "id",
    "initcol",
    "log",
    "logdata",
    "maturity",
    "msg",
    "multiMatch",
    "noauditlog",
    "nolog",
    "pass",
    "pause",
    "phase",
    "prepend",
    "proxy",
    "redirect",
    "rev",
    "sanitiseArg",
    "sanitiseMatched",
    "sanitiseMatchedBytes",
    "sanitiseRequestHeader",
    "sanitiseResponseHeader",
    "setenv",
    "setrsc",
    "setsid",
    "setuid",
    "setvar",
    "severity",
    "skip",
    "skipAfter",
    "status",
    "t",
    "tag",
    "ver",
    "xmlns",
];

/// Variable collections and single variables.
pub const VARIABLES: &[&str] = &[
    "ARGS",
    "ARGS_COMBINED_SIZE",
    "ARGS_GET",
    "ARGS_GET_NAMES",
    "ARGS_NAMES",
    "ARGS_POST",
    "ARGS_POST_NAMES",
    "AUTH_TYPE",
    "DURATION",
    "ENV",
    "FILES",
    "FILES_COMBINED_SIZE",
    "FILES_NAMES",
    "FILES_SIZES",
    "FILES_TMPNAMES",
    "FILES_TMP_CONTENT",
    "FULL_REQUEST",
    "FULL_REQUEST_LENGTH",
    "GEO",
    "GLOBAL",
    "HIGHEST_SEVERITY",
    "INBOUND_DATA_ERROR",
    "IP",
    "MATCHED_VAR",
    "MATCHED_VARS",
    "MATCHED_VARS_NAMES",
    "MATCHED_VAR_NAME",
    "MODSEC_BUILD",
    "MSC_PCRE_LIMITS_EXCEEDED",
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_CRLF_LF_LINES",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_FILENAME",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_NAME",
    "MULTIPART_PART_HEADERS",
    "MULTIPART_STRICT_ERROR",
    "MULTIPART_UNMATCHED_BOUNDARY",
    "OUTBOUND_DATA_ERROR",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQBODY_ERROR",
    "REQBODY_ERROR_MSG",
    "REQBODY_PROCESSOR",
    "REQBODY_PROCESSOR_ERROR",
    "REQUEST_BASENAME",
    "REQUEST_BODY",
    "REQUEST_BODY_LENGTH",
    "REQUEST_COOKIES",
    "REQUEST_COOKIES_NAMES",
    "REQUEST_FILENAME",
    "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "RESOURCE",
    "RESPONSE_BODY",
    "RESPONSE_CONTENT_LENGTH",
    "RESPONSE_CONTENT_TYPE",
    "RESPONSE_HEADERS",
    "RESPONSE_HEADERS_NAMES",
    "RESPONSE_PROTOCOL",
    "RESPONSE_STATUS",
    "RULE",
    "SCRIPT_BASENAME",
    "SCRIPT_FILENAME",
    "SCRIPT_GID",
    "SCRIPT_GROUPNAME",
    "SCRIPT_MODE",
    "SCRIPT_UID",
    "SCRIPT_USERNAME",
    "SDBM_DELETE_ERROR",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "SESSION",
    "SESSIONID",
    "STATUS_LINE",
    "STREAM_INPUT_BODY",
    "STREAM_OUTPUT_BODY",
    "TIME",
    "TIME_DAY",
    "TIME_EPOCH",
    "TIME_HOUR",
    "TIME_MIN",
    "TIME_MON",
    "TIME_SEC",
    "TIME_WDAY",
    "TIME_YEAR",
    "TX",
    "UNIQUE_ID",
    "URLENCODED_ERROR",
    "USER",
    "USERID",
    "WEBAPPID",
    "WEBSERVER_ERROR_LOG",
    "XML",
];

/// The position of a variable, by its canonical (upper-case) name, in
/// [`VARIABLES`]: the engine keeps a transaction's variables in a table
/// indexed by it.
pub fn variable_index(name: &str) -> Option<usize> {
    VARIABLES.binary_search(&name).ok()
}

/// The canonical spelling of `name` in `table`, looked up without case.
pub fn lookup(table: &'static [&'static str], name: &str) -> Option<&'static str> {
    table.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_refuse_unknown_names() {
        assert_eq!(lookup(TRANSFORMATIONS, "base64decode"), Some("base64Decode"));
        assert_eq!(lookup(OPERATORS, "RX"), Some("rx"));
        assert_eq!(lookup(TRANSFORMATIONS, "urlDecodeUnii"), None);
    }

    #[test]
    fn variables_are_sorted_for_their_index() {
        assert!(VARIABLES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(variable_index("ARGS").map(|i| VARIABLES[i]), Some("ARGS"));
        assert_eq!(variable_index("args"), None);
    }

    #[test]
    fn tables_have_no_duplicates() {
        for t in [OPERATORS, TRANSFORMATIONS, ACTIONS, VARIABLES] {
            let mut seen = std::collections::HashSet::new();
            for n in t {
                assert!(seen.insert(n.to_ascii_lowercase()), "{n}");
            }
        }
    }
}
