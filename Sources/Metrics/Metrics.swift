// Entity-level P/R/F1 (conlleval semantics) and corpus BLEU (sacreBLEU semantics). (issue 6)
