//! FIX 4.4 tag numbers and message types sable reads or writes, in one table each. Numbers
//! and names are FIX 4.4's (`gateway/fix/FIX44-sable.xml` has their types and enumerations);
//! 8000 and 8013 are sable's dialect.

/// Tag numbers, by FIX field name.
pub mod tag {
    /// Account (1).
    pub const ACCOUNT: u32 = 1;
    /// AvgPx (6).
    pub const AVG_PX: u32 = 6;
    /// BeginSeqNo (7).
    pub const BEGIN_SEQ_NO: u32 = 7;
    /// BeginString (8).
    pub const BEGIN_STRING: u32 = 8;
    /// BodyLength (9).
    pub const BODY_LENGTH: u32 = 9;
    /// Checksum (10).
    pub const CHECKSUM: u32 = 10;
    /// ClOrdId (11).
    pub const CL_ORD_ID: u32 = 11;
    /// CumQty (14).
    pub const CUM_QTY: u32 = 14;
    /// EndSeqNo (16).
    pub const END_SEQ_NO: u32 = 16;
    /// ExecId (17).
    pub const EXEC_ID: u32 = 17;
    /// ExecInst (18).
    pub const EXEC_INST: u32 = 18;
    /// SecurityIdSource (22).
    pub const SECURITY_ID_SOURCE: u32 = 22;
    /// LastPx (31).
    pub const LAST_PX: u32 = 31;
    /// LastQty (32).
    pub const LAST_QTY: u32 = 32;
    /// MsgSeqNum (34).
    pub const MSG_SEQ_NUM: u32 = 34;
    /// MsgType (35).
    pub const MSG_TYPE: u32 = 35;
    /// NewSeqNo (36).
    pub const NEW_SEQ_NO: u32 = 36;
    /// OrderId (37).
    pub const ORDER_ID: u32 = 37;
    /// OrderQty (38).
    pub const ORDER_QTY: u32 = 38;
    /// OrdStatus (39).
    pub const ORD_STATUS: u32 = 39;
    /// OrdType (40).
    pub const ORD_TYPE: u32 = 40;
    /// OrigClOrdId (41).
    pub const ORIG_CL_ORD_ID: u32 = 41;
    /// PossDupFlag (43).
    pub const POSS_DUP_FLAG: u32 = 43;
    /// Price (44).
    pub const PRICE: u32 = 44;
    /// RefSeqNum (45).
    pub const REF_SEQ_NUM: u32 = 45;
    /// SecurityId (48).
    pub const SECURITY_ID: u32 = 48;
    /// SenderCompId (49).
    pub const SENDER_COMP_ID: u32 = 49;
    /// SendingTime (52).
    pub const SENDING_TIME: u32 = 52;
    /// Side (54).
    pub const SIDE: u32 = 54;
    /// Symbol (55).
    pub const SYMBOL: u32 = 55;
    /// TargetCompId (56).
    pub const TARGET_COMP_ID: u32 = 56;
    /// Text (58).
    pub const TEXT: u32 = 58;
    /// TimeInForce (59).
    pub const TIME_IN_FORCE: u32 = 59;
    /// TransactTime (60).
    pub const TRANSACT_TIME: u32 = 60;
    /// EncryptMethod (98).
    pub const ENCRYPT_METHOD: u32 = 98;
    /// StopPx (99).
    pub const STOP_PX: u32 = 99;
    /// CxlRejReason (102).
    pub const CXL_REJ_REASON: u32 = 102;
    /// OrdRejReason (103).
    pub const ORD_REJ_REASON: u32 = 103;
    /// HeartBtInt (108).
    pub const HEART_BT_INT: u32 = 108;
    /// MaxFloor (111).
    pub const MAX_FLOOR: u32 = 111;
    /// TestReqId (112).
    pub const TEST_REQ_ID: u32 = 112;
    /// OnBehalfOfCompID (115; header routing, a Reject carries it back as DeliverToCompID).
    pub const ON_BEHALF_OF_COMP_ID: u32 = 115;
    /// OnBehalfOfSubID (116).
    pub const ON_BEHALF_OF_SUB_ID: u32 = 116;
    /// OrigSendingTime (122).
    pub const ORIG_SENDING_TIME: u32 = 122;
    /// GapFillFlag (123).
    pub const GAP_FILL_FLAG: u32 = 123;
    /// ExpireTime (126).
    pub const EXPIRE_TIME: u32 = 126;
    /// DeliverToCompID (128; header routing, a Reject carries it back as OnBehalfOfCompID).
    pub const DELIVER_TO_COMP_ID: u32 = 128;
    /// DeliverToSubID (129).
    pub const DELIVER_TO_SUB_ID: u32 = 129;
    /// ResetSeqNumFlag (141).
    pub const RESET_SEQ_NUM_FLAG: u32 = 141;
    /// OnBehalfOfLocationID (144).
    pub const ON_BEHALF_OF_LOCATION_ID: u32 = 144;
    /// DeliverToLocationID (145).
    pub const DELIVER_TO_LOCATION_ID: u32 = 145;
    /// ExecType (150).
    pub const EXEC_TYPE: u32 = 150;
    /// LeavesQty (151).
    pub const LEAVES_QTY: u32 = 151;
    /// RefTagId (371).
    pub const REF_TAG_ID: u32 = 371;
    /// RefMsgType (372).
    pub const REF_MSG_TYPE: u32 = 372;
    /// SessionRejectReason (373).
    pub const SESSION_REJECT_REASON: u32 = 373;
    /// BusinessRejectRefId (379).
    pub const BUSINESS_REJECT_REF_ID: u32 = 379;
    /// BusinessRejectReason (380).
    pub const BUSINESS_REJECT_REASON: u32 = 380;
    /// CxlRejResponseTo (434).
    pub const CXL_REJ_RESPONSE_TO: u32 = 434;
    /// MassCancelRequestType (530).
    pub const MASS_CANCEL_REQUEST_TYPE: u32 = 530;
    /// MassCancelResponse (531).
    pub const MASS_CANCEL_RESPONSE: u32 = 531;
    /// MassCancelRejectReason (532).
    pub const MASS_CANCEL_REJECT_REASON: u32 = 532;
    /// TotalAffectedOrders (533).
    pub const TOTAL_AFFECTED_ORDERS: u32 = 533;
    /// Username (553).
    pub const USERNAME: u32 = 553;
    /// Password (554).
    pub const PASSWORD: u32 = 554;
    /// TradeId (1003).
    pub const TRADE_ID: u32 = 1003;
    /// AggressorIndicator (1057).
    pub const AGGRESSOR_INDICATOR: u32 = 1057;
    /// SelfTradePrevention (8000).
    pub const SELF_TRADE_PREVENTION: u32 = 8000;
    /// CancelOnDisconnect (8013).
    pub const CANCEL_ON_DISCONNECT: u32 = 8013;
}

/// MsgType (35) values.
pub mod msg_type {
    /// Heartbeat.
    pub const HEARTBEAT: &[u8] = b"0";
    /// TestRequest.
    pub const TEST_REQUEST: &[u8] = b"1";
    /// ResendRequest.
    pub const RESEND_REQUEST: &[u8] = b"2";
    /// Reject (session level).
    pub const REJECT: &[u8] = b"3";
    /// SequenceReset (reset or gap fill).
    pub const SEQUENCE_RESET: &[u8] = b"4";
    /// Logout.
    pub const LOGOUT: &[u8] = b"5";
    /// ExecutionReport.
    pub const EXECUTION_REPORT: &[u8] = b"8";
    /// OrderCancelReject.
    pub const ORDER_CANCEL_REJECT: &[u8] = b"9";
    /// Logon.
    pub const LOGON: &[u8] = b"A";
    /// NewOrderSingle.
    pub const NEW_ORDER_SINGLE: &[u8] = b"D";
    /// OrderCancelRequest.
    pub const ORDER_CANCEL_REQUEST: &[u8] = b"F";
    /// OrderCancelReplaceRequest.
    pub const ORDER_CANCEL_REPLACE_REQUEST: &[u8] = b"G";
    /// OrderStatusRequest.
    pub const ORDER_STATUS_REQUEST: &[u8] = b"H";
    /// BusinessMessageReject.
    pub const BUSINESS_MESSAGE_REJECT: &[u8] = b"j";
    /// OrderMassCancelRequest.
    pub const ORDER_MASS_CANCEL_REQUEST: &[u8] = b"q";
    /// OrderMassCancelReport.
    pub const ORDER_MASS_CANCEL_REPORT: &[u8] = b"r";
}
