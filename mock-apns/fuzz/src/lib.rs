//! Shared by the fuzz targets and by `mock-apns/tests/check_request_corpus.rs`: how a fuzz input
//! becomes an HTTP/2 request (header list and body) for `mock_apns::fuzzing::check_request`.

pub mod input;
