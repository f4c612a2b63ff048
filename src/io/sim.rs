pub struct SimFs;
